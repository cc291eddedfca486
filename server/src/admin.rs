//! `switchboard agent add|list|remove|rotate`: provisioning agents directly
//! in the database (the server need not be running; if it is, the store's
//! locking keeps both consistent). This file holds what the commands mean
//! and the errors a person sees; the reads and writes are the store's
//! ([`Admin`]).

use std::path::PathBuf;

use switchboard_protocol::{Name, Token};
use thiserror::Error;

use crate::store::{Admin, AgentListing, Location, NameTaken, OpenError, StoreError};
use crate::token;

#[derive(Debug, Error)]
pub enum AdminError {
    #[error("invalid agent name {0:?}: {1}")]
    InvalidName(String, switchboard_protocol::NameError),
    #[error("an agent named {0} already exists (use `agent rotate {0}` for a new token)")]
    Exists(Name),
    #[error("no agent named {0} (`switchboard agent list` shows every agent)")]
    NoSuchAgent(Name),
    #[error(transparent)]
    NameTaken(#[from] NameTaken),
    /// Only `agent add` creates a database: a mistyped path or the wrong
    /// directory must not look like a database without agents.
    #[error(
        "no database at {0} (the server and `agent add` create it; `--db FILE` after the command picks another)"
    )]
    NoDatabase(PathBuf),
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Says "database: …", as before the store hid its backend.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness for a token")]
    Random(#[from] getrandom::Error),
}

fn parse_name(name: &str) -> Result<Name, AdminError> {
    Name::parse(name).map_err(|error| AdminError::InvalidName(name.to_owned(), error))
}

/// Opens a database that must already exist (a PostgreSQL one must hold
/// switchboard's schema).
fn open_existing(db: &Location) -> Result<Admin, AdminError> {
    if let Location::Sqlite(path) = db
        && !path.exists()
    {
        return Err(AdminError::NoDatabase(path.clone()));
    }
    Ok(Admin::open_existing(db)?)
}

/// Creates an agent (or brings back a removed one); returns its token.
pub fn add_agent(db: &Location, name: &str, supervisor: bool) -> Result<Token, AdminError> {
    let name = parse_name(name)?;
    let mut admin = Admin::open(db)?;
    let new_token = || token::generate().map_err(AdminError::from);
    admin
        .add_agent(&name, supervisor, new_token)?
        .ok_or(AdminError::Exists(name))
}

/// Makes an agent a supervisor (`true`: `agent promote`) or not (`agent
/// demote`). It may release, resolve and transfer any conversation from its
/// next request on: rights are read in each request's commit.
pub fn set_supervisor(db: &Location, name: &str, supervisor: bool) -> Result<(), AdminError> {
    let name = parse_name(name)?;
    let mut admin = open_existing(db)?;
    if !admin.set_supervisor(&name, supervisor)? {
        return Err(AdminError::NoSuchAgent(name));
    }
    Ok(())
}

/// Gives an agent a new token; the old one stops working at once.
pub fn rotate_agent(db: &Location, name: &str) -> Result<Token, AdminError> {
    let name = parse_name(name)?;
    let mut admin = open_existing(db)?;
    let token = token::generate()?;
    if admin.rotate(&name, &token)? {
        Ok(token)
    } else {
        Err(AdminError::NoSuchAgent(name))
    }
}

/// Removes an agent: its token stops working at once, and its conversations
/// count as unassigned. A running server closes its connections and
/// announces the releases within a second (its credential poll); a server
/// started later releases them before it accepts anyone. Its past messages
/// keep its name.
pub fn remove_agent(db: &Location, name: &str) -> Result<(), AdminError> {
    let name = parse_name(name)?;
    let mut admin = open_existing(db)?;
    if !admin.remove(&name)? {
        return Err(AdminError::NoSuchAgent(name));
    }
    Ok(())
}

/// Active agents, how many conversations each holds, and which are
/// supervisors.
pub fn list_agents(db: &Location) -> Result<Vec<AgentListing>, AdminError> {
    let mut admin = open_existing(db)?;
    Ok(admin.list()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_add_creates_a_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("typo.db");
        let db = Location::Sqlite(path.clone());
        assert!(matches!(list_agents(&db), Err(AdminError::NoDatabase(_))));
        assert!(matches!(
            rotate_agent(&db, "alice"),
            Err(AdminError::NoDatabase(_))
        ));
        assert!(matches!(
            remove_agent(&db, "alice"),
            Err(AdminError::NoDatabase(_))
        ));
        assert!(!path.exists(), "nothing was created");
        add_agent(&db, "alice", false).expect("adds");
        assert_eq!(list_agents(&db).expect("lists").len(), 1);
    }

    #[test]
    fn add_rotate_remove_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Location::Sqlite(dir.path().join("t.db"));
        add_rotate_remove(&db);
    }

    /// The same commands on PostgreSQL, the `agent` commands' second store.
    #[test]
    fn add_rotate_remove_round_trip_on_postgres() {
        let Some(url) = switchboard_tests::fresh_database() else {
            return;
        };
        let db = Location::Postgres(url.parse().expect("a valid URL"));
        let empty = list_agents(&db).expect_err("an empty database is refused");
        assert!(
            empty.to_string().contains("holds no switchboard data yet"),
            "{empty}"
        );
        add_rotate_remove(&db);
    }

    fn add_rotate_remove(db: &Location) {
        let db = db.clone();
        let first = add_agent(&db, "alice", false).expect("adds");
        assert!(matches!(
            add_agent(&db, "alice", false),
            Err(AdminError::Exists(_))
        ));
        let second = rotate_agent(&db, "alice").expect("rotates");
        assert_ne!(first, second);
        let listed = list_agents(&db).expect("lists");
        assert_eq!(listed.len(), 1);
        remove_agent(&db, "alice").expect("removes");
        assert!(list_agents(&db).expect("lists").is_empty());
        assert!(matches!(
            rotate_agent(&db, "alice"),
            Err(AdminError::NoSuchAgent(_))
        ));
        add_agent(&db, "alice", false).expect("a removed agent can be added again");
        assert!(matches!(
            add_agent(&db, "no way", false),
            Err(AdminError::InvalidName(..))
        ));
    }
}
