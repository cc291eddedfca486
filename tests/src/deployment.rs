//! [`Deployment`]: what a protocol test needs from the system under test,
//! whatever its shape. [`crate::TestServer`] is one node, or in cluster mode
//! ([`crate::store`]) several nodes on one database and one bus; the session
//! helpers ([`crate::user`], [`crate::agent`], …) work on either unchanged,
//! because they never reach into a server for an address or a file.

use crate::client::TestClient;

/// Something a test can connect to and provision agents on.
pub trait Deployment {
    /// Opens a connection and checks the greeting. Which node a cluster sends
    /// it to is the cluster's choice: a test that cares says so through an API
    /// of its own, not this one.
    fn connect(&self) -> impl Future<Output = TestClient> + Send;

    /// Provisions an agent with `switchboard agent add NAME` and returns its token.
    fn add_agent(&self, name: &str) -> String;
}
