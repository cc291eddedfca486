//! Optional TLS (issue 4, point 7): `serve --tls-cert --tls-key` with a
//! certificate the test makes, a real TLS client speaking the protocol, and
//! a plaintext client that gets nothing it can read.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

struct Certificate {
    dir: tempfile::TempDir,
    der: CertificateDer<'static>,
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM.
fn make_certificate() -> Certificate {
    let dir = tempfile::tempdir().expect("temp dir");
    let der = CertificateDer::from(write_self_signed_certificate(dir.path()));
    Certificate { dir, der }
}

fn tls_server(certificate: &Certificate) -> TestServer {
    let cert = certificate.dir.path().join("cert.pem");
    let key = certificate.dir.path().join("key.pem");
    TestServer::start_with(&[
        "--tls-cert",
        cert.to_str().expect("utf-8"),
        "--tls-key",
        key.to_str().expect("utf-8"),
    ])
}

fn connector(certificate: &Certificate) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.der.clone()).expect("a valid root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn read_frame(reader: &mut (impl AsyncBufReadExt + Unpin)) -> Value {
    let mut line = String::new();
    tokio::time::timeout(RECV_TIMEOUT, reader.read_line(&mut line))
        .await
        .expect("a frame in time")
        .expect("reads");
    serde_json::from_str(&line).expect("a JSON frame")
}

#[tokio::test]
async fn a_tls_client_speaks_the_protocol() {
    let certificate = make_certificate();
    let server = tls_server(&certificate);
    let tcp = TcpStream::connect(server.addr()).await.expect("connects");
    let name = ServerName::try_from("127.0.0.1").expect("an IP name");
    let tls = connector(&certificate)
        .connect(name, tcp)
        .await
        .expect("the handshake succeeds with the test's CA");
    let (read, mut write) = tokio::io::split(tls);
    let mut reader = BufReader::new(read);
    assert_eq!(read_frame(&mut reader).await, greeting());
    let requests = [
        json!({"type":"hello","id":1,"role":"user","name":"ana"}),
        json!({"type":"send","id":2,"body":"over TLS"}),
    ];
    for request in &requests {
        let mut line = serde_json::to_vec(request).expect("serialises");
        line.push(b'\n');
        write.write_all(&line).await.expect("writes");
    }
    assert_eq!(read_frame(&mut reader).await["type"], "welcome");
    let sent = read_frame(&mut reader).await;
    assert_eq!(sent["type"], "sent");
    assert_eq!(sent["message"]["body"], "over TLS");
}

#[tokio::test]
async fn a_plaintext_client_gets_no_greeting_from_a_tls_server() {
    let certificate = make_certificate();
    let server = tls_server(&certificate);
    let mut tcp = TcpStream::connect(server.addr()).await.expect("connects");
    tcp.write_all(b"{\"type\":\"ping\"}\n")
        .await
        .expect("writes");
    let mut answer = Vec::new();
    // The server reads our line as a broken handshake and closes.
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closes the connection");
    assert!(
        !String::from_utf8_lossy(&answer).contains("greeting"),
        "no plaintext frame: {answer:?}"
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let certificate = make_certificate();
    let server = tls_server(&certificate);
    let other = make_certificate();
    let tcp = TcpStream::connect(server.addr()).await.expect("connects");
    let name = ServerName::try_from("127.0.0.1").expect("an IP name");
    let handshake = connector(&other).connect(name, tcp).await;
    assert!(handshake.is_err(), "an unknown certificate is rejected");
}

#[test]
fn serve_refuses_a_missing_certificate_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(switchboard_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("t.db"))
        .args(["--tls-cert"])
        .arg(dir.path().join("missing.pem"))
        .args(["--tls-key"])
        .arg(dir.path().join("missing-key.pem"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS certificate"), "{stderr}");
}
