//! One server per database file.
//!
//! Each server delivers live only the commits it made itself, so two
//! servers on one SQLite file would each hear only half of the help desk: a
//! user on one would never hear an answer sent through the other. A server
//! therefore holds an exclusive lock on a file beside the database for as
//! long as it runs, and a second one refuses to start. The operating system
//! lets go of the lock when the process ends, however it ends (`kill -9`
//! included), so a crashed server never blocks the next. The `agent`
//! commands take no lock: they are meant to run beside a server.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::store::OpenError;

/// The lock, held until dropped.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

/// `s.db` → `s.db.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

impl ServerLock {
    /// Takes the lock for `db`, or says who has it.
    pub fn take(db: &Path) -> Result<ServerLock, OpenError> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|reason| OpenError::Lock {
                path: path.clone(),
                reason,
            })?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(ServerLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(OpenError::InUse {
                db: db.to_owned(),
                lock: path,
            }),
            Err(errno) => Err(OpenError::Lock {
                path,
                reason: errno.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("s.db");
        let first = ServerLock::take(&db).expect("the first server locks");
        let refused = ServerLock::take(&db).expect_err("a second server is refused");
        assert!(matches!(refused, OpenError::InUse { .. }), "{refused:?}");
        let message = refused.to_string();
        assert!(message.contains("s.db.lock"), "{message}");
        assert!(message.contains("another switchboard"), "{message}");
        drop(first);
        ServerLock::take(&db).expect("free again once the first has stopped");
    }

    #[test]
    fn the_lock_sits_beside_the_database() {
        assert_eq!(
            lock_path(Path::new("/x/help.db")),
            Path::new("/x/help.db.lock")
        );
    }
}
