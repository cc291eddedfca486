//! Before `hello`: the anonymous connection's one request, and signing in.
//!
//! Anything but `hello` or `bye` is answered `not_authenticated`; three
//! failed `hello`s close the connection (PROTOCOL.md). A good `hello`
//! registers the connection with the router and says `welcome`.

use std::io;

use switchboard_protocol::{ClientFrame, Name, RequestId, Role, ServerFrame};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{End, MAX_FAILED_HELLOS, Session, State};
use crate::cmd::hello::{Hello, SignedIn};
use crate::error::RequestError;
use crate::event::ConnId;
use crate::fanout::Router;
use crate::fanout::outbox::outbox;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    pub(super) async fn handle_anonymous(&mut self, frame: ClientFrame) -> io::Result<Option<End>> {
        let ClientFrame::Hello {
            id,
            role,
            name,
            token,
        } = frame
        else {
            if matches!(frame, ClientFrame::Bye { .. }) {
                return Ok(Some(End::Bye));
            }
            self.reply_error(frame.id().cloned(), &RequestError::NotAuthenticated)
                .await?;
            return Ok(None);
        };
        let signed_in = match Hello::parse(role, &name, token) {
            Ok(hello) => hello.apply(&self.services, self.per_connection.peer).await,
            Err(error) => Err(error),
        };
        let error = match signed_in {
            Ok(signed_in) => match self.sign_in(id.clone(), signed_in).await? {
                Ok(()) => return Ok(None),
                Err(error) => error,
            },
            Err(error) => error,
        };
        // An operator can see who is being guessed at. The name only if it
        // is one (names are plain ASCII, safe in a log); never the token.
        // And from where: the address to block when someone guesses.
        tracing::warn!(
            conn = self.conn,
            peer = ?self.per_connection.peer,
            %role,
            name = Name::parse(&name).ok().as_ref().map(Name::as_str),
            code = error.code().as_str(),
            "hello refused"
        );
        let State::Anonymous { failed_hellos } = &mut self.state else {
            self.reply_error(id, &error).await?;
            return Ok(None);
        };
        *failed_hellos += 1;
        if *failed_hellos < MAX_FAILED_HELLOS {
            self.reply_error(id, &error).await?;
            return Ok(None);
        }
        // The last one says the connection is closing, and what to do
        // (first-hour findings: the person at `nc` just got EOF).
        self.services.counts.refusals.count(error.code());
        let mut frame = error.to_frame(id);
        if let ServerFrame::Error { message, .. } = &mut frame {
            message.push_str(&format!(
                "; that was {MAX_FAILED_HELLOS} failed hellos: this connection closes now, \
                 connect again to retry"
            ));
        }
        self.reply(&frame).await?;
        Ok(Some(End::TooManyHellos))
    }

    /// Registers the connection with the router and says `welcome`.
    async fn sign_in(
        &mut self,
        id: Option<RequestId>,
        signed_in: SignedIn,
    ) -> io::Result<Result<(), RequestError>> {
        let SignedIn {
            identity,
            new_token,
            supervisor,
        } = signed_in;
        let credential = identity.credential.as_bytes().to_vec();
        let config = &self.services.config;
        let (outbox, queued) = outbox(config.outbox_frames, config.outbox_bytes);
        // In a cluster, the count includes every agent whose subscription
        // was answered before this sign-in, on any node.
        if let Err(error) = self.services.catch_up().await {
            return Ok(Err(error));
        }
        let router = &self.services.router;
        let Some(agents_online) = router
            .connect(self.conn, identity.clone(), credential, outbox)
            .await
        else {
            return Ok(Err(RequestError::Internal));
        };
        self.registered = Some(Registered {
            router: router.clone(),
            conn: self.conn,
        });
        self.outbox = Some(queued);
        self.counted.signed_in(identity.role);
        tracing::info!(conn = self.conn, role = %identity.role, name = %identity.name, "signed in");
        let welcome = ServerFrame::Welcome {
            id,
            role: identity.role,
            name: identity.name.clone(),
            token: new_token,
            agents_online: (identity.role == Role::User).then_some(agents_online),
            supervisor: (identity.role == Role::Agent).then_some(supervisor),
        };
        self.state = State::SignedIn(identity);
        self.idle.start(tokio::time::Instant::now());
        self.write_frame(&welcome).await?;
        Ok(Ok(()))
    }
}

/// Tells the router a connection is gone, however the session ends (even by
/// panic).
pub(super) struct Registered {
    pub(super) router: Router,
    pub(super) conn: ConnId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.router.disconnect(self.conn);
    }
}
