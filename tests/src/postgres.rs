//! [`TestPostgres`]: a throwaway PostgreSQL for the cluster tests (issue 16),
//! on a free loopback port with its data in a temporary directory; stopped
//! and removed when dropped, so tests can run in parallel.
//!
//! It runs Debian's `initdb` and `pg_ctl` from the newest
//! `/usr/lib/postgresql/*/bin`. PostgreSQL refuses to run as root, so when the
//! tests do, every command runs as the `postgres` user (`runuser -u postgres
//! --`) in a directory that user owns. `pg_ctl` starts the server and waits,
//! bounded, until it accepts connections; the server's log is quoted when it
//! does not. Stopping is `pg_ctl stop -m immediate`: what a crash does to the
//! server's clients, and the recovery on the next start is the real one.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::throwaway::{PORT_ATTEMPTS, STARTUP_TIMEOUT, free_port, port_taken, read_log, require};

/// The user Debian's package creates to own its clusters; the tests run the
/// server as that user when they run as root.
const POSTGRES_USER: &str = "postgres";

/// Where Debian's `postgresql` package puts one directory per major version.
const DEBIAN_VERSIONS_DIR: &str = "/usr/lib/postgresql";

/// The line that installs what this module needs.
const INSTALL: &str = "apt-get install postgresql";

/// A running throwaway PostgreSQL with a trusted superuser `postgres`.
pub struct TestPostgres {
    /// Holds the data directory, the socket and the log; removed on drop.
    dir: tempfile::TempDir,
    /// The `bin` directory of the newest installed version.
    bin: PathBuf,
    /// Whether the commands run as [`POSTGRES_USER`] (the tests run as root).
    as_postgres_user: bool,
    port: u16,
    running: bool,
}

impl TestPostgres {
    /// A fresh cluster, initialised and accepting connections. `None` only
    /// when PostgreSQL is missing and the skip variable is set (see
    /// [`crate::throwaway`]); missing otherwise, the test fails with
    /// `apt-get install postgresql`.
    pub fn start() -> Option<TestPostgres> {
        let bin = require("PostgreSQL", newest_bin_dir(), INSTALL)?;
        let dir = tempfile::Builder::new()
            .prefix("switchboard-pg-")
            .tempdir()
            .expect("create a temporary directory for PostgreSQL");
        let as_postgres_user = rustix::process::geteuid().is_root();
        let mut postgres = TestPostgres {
            dir,
            bin,
            as_postgres_user,
            port: free_port(),
            running: false,
        };
        if as_postgres_user {
            postgres.give_dir_to_postgres_user();
        }
        postgres.init();
        for attempt in 1..=PORT_ATTEMPTS {
            match postgres.try_start() {
                Ok(()) => return Some(postgres),
                Err(log) if port_taken(&log) && attempt < PORT_ATTEMPTS => {
                    postgres.port = free_port();
                }
                Err(log) => postgres.fail_to_start(&log),
            }
        }
        unreachable!("the last attempt either returns or fails the test")
    }

    /// Where a client connects: `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{POSTGRES_USER}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// The loopback port, the same across [`TestPostgres::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): every client
    /// loses its connection and nothing is checkpointed, as in a crash.
    pub fn stop(&mut self) {
        assert!(self.running, "PostgreSQL is not running");
        let output = self.pg_ctl(&["stop", "-m", "immediate"]);
        assert!(
            output.status.success(),
            "`pg_ctl stop` failed ({}): {}{}\nlog:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        self.running = false;
    }

    /// Starts the server again on the same data and port after
    /// [`TestPostgres::stop`], and waits until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(!self.running, "PostgreSQL is still running");
        if let Err(log) = self.try_start() {
            self.fail_to_start(&log);
        }
    }

    /// [`TestPostgres::stop`] then [`TestPostgres::start_again`]: the same
    /// URL serves again, with everything committed before the stop.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Creates an empty database `name` (`createdb`), owned by the superuser.
    pub fn create_database(&self, name: &str) {
        let output = self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", POSTGRES_USER, name])
            .stdin(Stdio::null())
            .output()
            .expect("run createdb");
        assert!(
            output.status.success(),
            "`createdb {name}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs `sql` in database `name` with `psql`, failing the test if it fails.
    pub fn run_sql(&self, name: &str, sql: &str) {
        let output = self
            .command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                POSTGRES_USER,
                "-d",
                name,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "`psql -c {sql}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://{POSTGRES_USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// For a server that is never dropped (see [`crate::shared_postgres`]):
    /// a watchdog, in a process group of its own so that a Ctrl-C to the
    /// tests does not take it down first, waits for this process to end
    /// however it ends, then stops the server and removes its directory.
    pub(crate) fn stop_when_this_process_exits(&self) {
        let stop = self.command_line(
            "pg_ctl",
            &[
                OsStr::new("-D"),
                self.data_dir().as_os_str(),
                OsStr::new("stop"),
                OsStr::new("-m"),
                OsStr::new("immediate"),
            ],
        );
        // The shell starts the watchdog in the background and exits at
        // once: waited for here, it leaves no zombie, and the watchdog,
        // orphaned, outlives this process.
        let started = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                "pid=$1; dir=$2; shift 2; \
                 ( while kill -0 \"$pid\" 2>/dev/null; do sleep 0.5; done; \
                   \"$@\" >/dev/null 2>&1; rm -rf \"$dir\" ) &",
            )
            .arg("watchdog")
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            .args(stop)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .expect("start the watchdog that stops the shared PostgreSQL");
        assert!(started.success(), "the watchdog's shell failed: {started}");
    }

    /// Everything the server has logged, across restarts.
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Hands the temporary directory to [`POSTGRES_USER`]: `initdb` creates
    /// the data directory in it and the server its socket and log. Its parent
    /// (the system's temporary directory) is traversable by every user.
    fn give_dir_to_postgres_user(&self) {
        let output = Command::new("chown")
            .arg(format!("{POSTGRES_USER}:"))
            .arg(self.dir.path())
            .output()
            .expect("run chown");
        assert!(
            output.status.success(),
            "cannot give {} to the {POSTGRES_USER} user ({}): {} \
             (Debian's postgresql package creates that user: `{INSTALL}`)",
            self.dir.path().display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `initdb` with a trusted superuser named `postgres`. `--no-sync`: a test
    /// cluster does not outlive a crash of the machine.
    fn init(&self) {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", POSTGRES_USER, "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl start`, waiting up to [`STARTUP_TIMEOUT`] until the server
    /// accepts connections. On failure, the server's log, to tell a taken
    /// port from anything else.
    fn try_start(&mut self) -> Result<(), String> {
        // fsync=off: a crash of the server (kill, `stop -m immediate`) still
        // loses nothing committed, since the WAL is in the system's page
        // cache; only a crash of the machine would, and a test cluster does
        // not outlive one. Commits stay synchronous, so what a test was told
        // is committed is there after a stop.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let timeout_secs = STARTUP_TIMEOUT.as_secs().to_string();
        let output = self.pg_ctl(&["start", "-w", "-t", &timeout_secs, "-o", &options]);
        if output.status.success() {
            self.running = true;
            return Ok(());
        }
        Err(format!(
            "`pg_ctl start` failed ({}): {}{}\nlog:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        ))
    }

    fn fail_to_start(&mut self, log: &str) -> ! {
        // pg_ctl may have left a server that came up after its wait ended.
        self.running = true;
        panic!(
            "PostgreSQL did not accept connections on 127.0.0.1:{} within \
             {STARTUP_TIMEOUT:?}: {log}",
            self.port
        );
    }

    /// `pg_ctl ACTION` on this cluster's data, its server writing to the log.
    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl")
    }

    /// [`TestPostgres::command`]'s program and arguments, as words.
    fn command_line(&self, program: &str, args: &[&OsStr]) -> Vec<OsString> {
        let mut words: Vec<OsString> = Vec::new();
        if self.as_postgres_user {
            words.extend(["runuser", "-u", POSTGRES_USER, "--"].map(Into::into));
        }
        words.push(self.bin.join(program).into_os_string());
        words.extend(args.iter().map(|arg| arg.to_os_string()));
        words
    }

    /// `program` from the version's `bin`, as [`POSTGRES_USER`] when the
    /// tests run as root, started in the temporary directory (a directory
    /// the user can enter, so nothing warns about the working directory).
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", POSTGRES_USER, "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        }
        if std::thread::panicking() {
            eprintln!("--- PostgreSQL's log ---\n{}", self.log());
        }
    }
}

/// The `bin` directory of the newest PostgreSQL under
/// `/usr/lib/postgresql/VERSION/bin` that has `initdb`, `pg_ctl` and `postgres`.
fn newest_bin_dir() -> Option<PathBuf> {
    std::fs::read_dir(DEBIAN_VERSIONS_DIR)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = version_of(&entry.file_name().to_string_lossy())?;
            let bin = entry.path().join("bin");
            has_programs(&bin).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`: versions compare by number.
fn version_of(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn has_programs(bin: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|program| bin.join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::version_of;

    #[test]
    fn versions_compare_by_number() {
        assert!(version_of("15") > version_of("9.6"));
        assert!(version_of("16") > version_of("15"));
        assert_eq!(version_of("main"), None);
    }
}
