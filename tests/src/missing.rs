//! What a test does when something it needs from the machine is missing
//! (tmux, PostgreSQL, nats-server, root for a tmpfs): it fails with what to
//! do, so a green run never hides a test that tested nothing. A developer
//! who cannot provide it skips on purpose with an environment variable
//! that CI never sets, and the skip is printed where the test summary
//! shows it.

use std::io::Write;

/// `None` (skip, said on stderr) when `skip_env` is set; otherwise fails
/// the running test: "TEST needs X: `remedy`". `needs` says what is
/// missing ("tmux, which is not installed"), `remedy` what fixes it.
pub fn skip_or_fail<T>(needs: &str, remedy: &str, skip_env: &str) -> Option<T> {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    if std::env::var_os(skip_env).is_some_and(|value| !value.is_empty()) {
        // Straight to the stderr handle: `eprintln!` is captured by the
        // test runner and shown only for failing tests, and a skip must be
        // seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test} needs {needs} ({remedy}), because {skip_env} is set"
        );
        return None;
    }
    panic!("{test} needs {needs}: {remedy} (or set {skip_env}=1 to skip the tests that need it)");
}
