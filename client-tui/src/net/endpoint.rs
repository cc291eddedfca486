//! Where the server is and how to reach it: plain TCP, or TLS trusting
//! either a given CA file or the public authorities compiled in; and the
//! hints that a failed sign-in adds when TLS is probably on the wrong side.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use super::ConnectError;

/// Where the server is and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub addr: String,
    /// `Some` to speak TLS (`--tls`), checking the server's certificate.
    pub tls: Option<TlsConnector>,
}

impl Endpoint {
    pub fn plain(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            tls: None,
        }
    }

    /// TLS trusting the PEM certificates in `ca`, or the usual public
    /// authorities (compiled in, so no system store is needed) without it.
    pub fn tls(addr: impl Into<String>, ca: Option<&Path>) -> Result<Self, ConnectError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let bad_ca = |e: rustls::pki_types::pem::Error| ConnectError::Ca {
                    path: path.to_owned(),
                    reason: e.to_string(),
                };
                for cert in CertificateDer::pem_file_iter(path).map_err(bad_ca)? {
                    roots
                        .add(cert.map_err(bad_ca)?)
                        .map_err(|e| ConnectError::Ca {
                            path: path.to_owned(),
                            reason: e.to_string(),
                        })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Protocol(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            addr: addr.into(),
            tls: Some(TlsConnector::from(Arc::new(config))),
        })
    }

    /// The same way of connecting (plain, or TLS with the same roots) to
    /// another node of the help desk.
    pub fn at(&self, addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            tls: self.tls.clone(),
        }
    }

    /// The name the certificate must carry: the host part of `addr`.
    pub(super) fn server_name(&self) -> Result<ServerName<'static>, ConnectError> {
        let host = self
            .addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(host, _port)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned())
            .map_err(|_| ConnectError::Protocol(format!("{host:?} is not a host name for TLS")))
    }
}

/// A TLS server waits for the client's hello and never greets a plaintext
/// client, so a plaintext client that hears nothing may be talking to one.
pub(super) fn timeout_hint(tls: bool) -> &'static str {
    if tls {
        ""
    } else {
        " (if it serves TLS, add --tls)"
    }
}

/// A plaintext server greets first; a TLS client reads that line as a
/// record of no known type, and says only "received corrupt message".
pub(super) fn tls_hint(error: &std::io::Error) -> &'static str {
    let cause = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match cause {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            " (if the server does not serve TLS, leave out --tls)"
        }
        _ => "",
    }
}
