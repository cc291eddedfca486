//! Certificates for the TLS tests, made on the spot so that no key is ever
//! checked in and every test trusts only the server it started.

use std::path::Path;

/// Writes a self-signed certificate for `127.0.0.1` and `localhost` as
/// `cert.pem` and `key.pem` in `dir`, for `serve --tls-cert --tls-key`, and
/// returns the certificate (DER) for a client to trust.
pub fn write_self_signed_certificate(dir: &Path) -> Vec<u8> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen makes a certificate");
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("write cert.pem");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem())
        .expect("write key.pem");
    certified.cert.der().to_vec()
}
