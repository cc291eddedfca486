//! Agent tokens: given on the command line, or made with the real CLI,
//! `switchboard agent add NAME --db FILE`, which prints the token alone.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::error::LoadError;

/// How long one `switchboard agent add` may take (it waits up to 5 s for the
/// database's write lock while the server is busy).
const AGENT_ADD_TIMEOUT: Duration = Duration::from_secs(30);

/// The `switchboard` binary: `given`, else the one next to this program, else
/// whatever PATH finds.
pub fn switchboard_binary(given: Option<&Path>) -> PathBuf {
    if let Some(path) = given {
        return path.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("switchboard")))
        .filter(|sibling| sibling.is_file())
        .unwrap_or_else(|| PathBuf::from("switchboard"))
}

/// Creates agent `name` in `db` and returns its token.
pub async fn add_agent(switchboard: &Path, db: &Path, name: &str) -> Result<String, LoadError> {
    let failed = |reason: String| LoadError::Provision {
        name: name.to_string(),
        reason,
    };
    let child = Command::new(switchboard)
        .arg("agent")
        .arg("add")
        .arg(name)
        .arg("--db")
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| failed(format!("cannot run {}: {error}", switchboard.display())))?;
    let output = tokio::time::timeout(AGENT_ADD_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| failed(format!("no answer in {AGENT_ADD_TIMEOUT:?}")))?
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!(
            "{} exited with {}: {}",
            switchboard.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(failed("the CLI did not print a token".into()));
    }
    Ok(token)
}
