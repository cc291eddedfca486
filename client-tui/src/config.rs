//! Where a user's token is kept: `$XDG_CONFIG_HOME/switchboard/` (else
//! `~/.config/switchboard/`), one file per server and name, readable only by
//! its owner (mode 0600, directory 0700).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The configuration directory: `$XDG_CONFIG_HOME/switchboard`, else
/// `$HOME/.config/switchboard`. `None` when neither variable is usable.
pub fn config_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|home| home.join(".config"))
    })?;
    Some(base.join("switchboard"))
}

/// The token file for `name` on `server`. Characters a file name should not
/// hold (`:` `/` …) become `_`; names are already safe.
pub fn token_path(dir: &Path, server: &str, name: &str) -> PathBuf {
    let safe: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}_{name}.token"))
}

/// The stored token, or `None` if there is no file yet.
pub fn load_token(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the token so that only its owner can read it.
pub fn save_token(path: &Path, token: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its old mode with `open`; make sure.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{token}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_with_owner_only_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = token_path(&dir.path().join("switchboard"), "127.0.0.1:7878", "ana");
        assert!(path.ends_with("127.0.0.1_7878_ana.token"));
        assert_eq!(load_token(&path).expect("readable"), None);
        save_token(&path, "s3cret").expect("saved");
        assert_eq!(
            load_token(&path).expect("readable").as_deref(),
            Some("s3cret")
        );
        let mode = fs::metadata(&path).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
