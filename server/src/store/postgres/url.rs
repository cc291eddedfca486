//! [`PostgresUrl`]: where the database is, as `--postgres` gave it, and how
//! it is shown in logs and errors: without its password.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::Host;
use thiserror::Error;

/// How long a connection attempt may take before startup says the database
/// is unreachable, unless the URL sets `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL connection string, `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
/// or `host=… user=… dbname=…`. Shown (`Display`, `Debug`) as
/// `postgres://USER@HOST:PORT/DB`: the password never reaches a log line or
/// an error message.
#[derive(Clone)]
pub struct PostgresUrl {
    /// Shared: cloned for every connection, and kept small in errors.
    config: Arc<postgres::Config>,
    shown: String,
}

/// `--postgres` is not a connection string.
#[derive(Debug, Error)]
#[error(
    "--postgres is not a PostgreSQL URL ({reason}); give one like \
     postgres://USER:PASSWORD@HOST:5432/DATABASE"
)]
pub struct BadPostgresUrl {
    // The client's reason names the option at fault, never its value.
    reason: String,
}

impl FromStr for PostgresUrl {
    type Err = BadPostgresUrl;

    fn from_str(text: &str) -> Result<Self, BadPostgresUrl> {
        let mut config: postgres::Config =
            text.parse()
                .map_err(|error: postgres::Error| BadPostgresUrl {
                    reason: error.to_string(),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            // So an operator tells switchboard's connections apart in
            // `pg_stat_activity`.
            config.application_name("switchboard");
        }
        let shown = shown(&config);
        Ok(PostgresUrl {
            config: Arc::new(config),
            shown,
        })
    }
}

impl PostgresUrl {
    pub(in crate::store) fn config(&self) -> &postgres::Config {
        &self.config
    }
}

/// `postgres://USER@HOST:PORT/DB`, from the parsed parts: no password,
/// whatever form the string had.
fn shown(config: &postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let host = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(index).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        for text in [
            "postgres://sb:s3cret@db.example:6543/desk",
            "host=db.example port=6543 user=sb password=s3cret dbname=desk",
        ] {
            let url: PostgresUrl = text.parse().expect("valid");
            assert_eq!(url.to_string(), "postgres://sb@db.example:6543/desk");
            assert!(!format!("{url:?}").contains("s3cret"));
        }
    }

    #[test]
    fn a_bad_url_says_what_is_expected_without_echoing_it() {
        let error = "postgres://sb:s3cret@db:notaport/desk"
            .parse::<PostgresUrl>()
            .expect_err("bad port");
        let text = error.to_string();
        assert!(text.contains("postgres://USER:PASSWORD@HOST"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
