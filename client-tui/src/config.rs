//! Where a user's token is kept: `$XDG_CONFIG_HOME/switchboard/` (else
//! `~/.config/switchboard/`), one file per server address and name,
//! readable only by its owner (mode 0600, directory 0700).
//!
//! A help desk reached through several addresses (`--server a,b,c`, the
//! nodes of one cluster) is one help desk, and its users have one token.
//! The files stay keyed by one address each, as they were for a single
//! server, so that nothing existing moves: at start the client reads the
//! first of the list's files that exists ([`load_token_from`]), and a new
//! token is written to the file of every address in the list. The same user
//! then keeps the token whatever node it lands on, whatever the order of
//! the list, and when a list grows from one address or later shrinks.

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

/// The token file of `name` for each address of `servers`, in order.
pub fn token_paths(dir: &Path, servers: &[String], name: &str) -> Vec<PathBuf> {
    servers
        .iter()
        .map(|server| token_path(dir, server, name))
        .collect()
}

/// A token read from the files of a `--server` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub token: String,
    /// The files that hold it, in the list's order: what to delete when
    /// the help desk no longer accepts it.
    pub files: Vec<PathBuf>,
}

/// The token in the first of `paths` that holds one, or `None` if none
/// does.
pub fn load_token_from(paths: &[PathBuf]) -> io::Result<Option<StoredToken>> {
    let mut found: Option<StoredToken> = None;
    for path in paths {
        let Some(token) = load_token(path)? else {
            continue;
        };
        match &mut found {
            None => {
                found = Some(StoredToken {
                    token,
                    files: vec![path.clone()],
                });
            }
            Some(stored) if stored.token == token => stored.files.push(path.clone()),
            // A different token, left from another help desk: not used.
            Some(_) => {}
        }
    }
    Ok(found)
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

    #[test]
    fn a_list_reads_the_first_file_that_exists_and_names_each_copy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let servers = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // A token kept from the days of one server, on b.
        let paths = token_paths(dir.path(), &servers(&["a:1", "b:2", "c:3"]), "ana");
        assert_eq!(load_token_from(&paths).expect("readable"), None);
        save_token(&paths[1], "from-b").expect("saved");
        let stored = load_token_from(&paths).expect("readable").expect("found");
        assert_eq!(stored.token, "from-b");
        assert_eq!(stored.files, [paths[1].clone()]);
        // Saved for the whole list: any order and any part finds it.
        for path in &paths {
            save_token(path, "desk").expect("saved");
        }
        let reordered = token_paths(dir.path(), &servers(&["c:3", "a:1"]), "ana");
        let stored = load_token_from(&reordered)
            .expect("readable")
            .expect("found");
        assert_eq!(stored.token, "desk");
        assert_eq!(stored.files, reordered);
        // A file that holds another token is not named as a copy.
        save_token(&paths[0], "other").expect("saved");
        let stored = load_token_from(&paths).expect("readable").expect("found");
        assert_eq!(stored.token, "other");
        assert_eq!(stored.files, [paths[0].clone()]);
    }
}
