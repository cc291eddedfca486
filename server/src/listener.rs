//! Binding the listening socket with an explicit listen backlog.
//!
//! The backlog is the queue of connections the kernel has completed and the
//! accept loop has not yet taken. When a burst overflows it, Linux drops
//! the handshake's last ACK: the client believes it is connected, the
//! server never hears of it, and a client waiting for the greeting waits
//! in silence (issue 15, finding 9). tokio's `TcpListener::bind` asks for
//! 1,024; we ask for the system's maximum unless told otherwise, so a
//! burst must be far larger before that happens (and clients give up on a
//! missing greeting and retry, which covers the rest).

use std::io;

use tokio::net::{TcpListener, TcpSocket};

/// Where Linux says how long a listen backlog may be; a longer request is
/// cut to it silently.
const SOMAXCONN_PATH: &str = "/proc/sys/net/core/somaxconn";

/// The backlog asked for where the system's maximum cannot be read: Linux's
/// default `somaxconn` since 5.4 (the kernel clamps a larger request anyway).
pub const FALLBACK_BACKLOG: u32 = 4_096;

/// The longest listen backlog this system allows (read on Linux; elsewhere
/// [`FALLBACK_BACKLOG`]).
pub fn system_max_backlog() -> u32 {
    std::fs::read_to_string(SOMAXCONN_PATH)
        .ok()
        .and_then(|text| parse_somaxconn(&text))
        .unwrap_or(FALLBACK_BACKLOG)
}

/// The backlog for `--listen-backlog`: 0 means the system's maximum.
pub fn backlog_for(asked: u32) -> u32 {
    if asked == 0 {
        system_max_backlog()
    } else {
        asked
    }
}

fn parse_somaxconn(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|max| *max > 0)
}

/// Listens on the first of `address`'s resolutions that binds, with
/// SO_REUSEADDR (as `TcpListener::bind` sets it, so a restarted server can
/// take its port back while old connections linger in TIME_WAIT) and a
/// listen queue of `backlog` connections.
pub async fn bind(address: &str, backlog: u32) -> io::Result<TcpListener> {
    let mut last_error = None;
    for resolved in tokio::net::lookup_host(address).await? {
        let socket = if resolved.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(resolved).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn somaxconn_is_read_as_a_positive_number() {
        assert_eq!(parse_somaxconn("4096\n"), Some(4096));
        assert_eq!(parse_somaxconn("0\n"), None);
        assert_eq!(parse_somaxconn("lots"), None);
        assert!(system_max_backlog() > 0);
    }

    #[test]
    fn zero_asks_for_the_system_maximum() {
        assert_eq!(backlog_for(0), system_max_backlog());
        assert_eq!(backlog_for(4), 4);
    }

    #[tokio::test]
    async fn binds_with_the_backlog_and_accepts() {
        let listener = bind("127.0.0.1:0", 4).await.expect("binds");
        let address = listener.local_addr().expect("has an address");
        let client = tokio::net::TcpStream::connect(address);
        let (client, accepted) = tokio::join!(client, listener.accept());
        client.expect("connects");
        accepted.expect("accepts");
    }

    #[tokio::test]
    async fn an_address_that_is_taken_is_an_error() {
        let first = bind("127.0.0.1:0", 4).await.expect("binds");
        let address = first.local_addr().expect("has an address").to_string();
        assert!(bind(&address, 4).await.is_err());
    }
}
