//! `switchboard-load`: drives a running switchboard server with many users
//! and agents, measures throughput and latency, and checks that every acked
//! message reached every agent once, in order, and is stored (read back over
//! the wire). It depends on the protocol crate only, never on the server, so
//! one build of it measures any build of the server.
//!
//! It runs beside the server on the same cores, so while the clock runs it
//! does as little as it can per message: one thread by default, no
//! allocation or whole-frame JSON parsing per frame, compact records, and
//! the exact-once checks after the run. Its own CPU time per message is in
//! the report beside every figure; `scripts/instructions.sh load` counts
//! its instructions.
//!
//! - [`args`]: the command line and the run plan it describes.
//! - [`driver`]: one run, phase by phase; [`error`]: why a run could not
//!   start or finish.
//! - [`conn`]: a connection, greeted, identified and subscribed; [`connect`]:
//!   all of the run's, a bounded number at a time.
//! - [`user`]: a sending user, closed or open loop; [`agent`]: a receiving agent.
//! - [`probe`]: the body every load message carries (run, user, send time).
//! - [`provision`]: agent tokens through `switchboard agent add`.
//! - [`stats`]: latency histograms and error counts; [`procfs`]: memory and
//!   CPU time of the server and of this process.
//! - [`check`]: the correctness checks on what was seen; [`history`]: the
//!   stored check, reading each conversation back; [`fast_hash`]: the hash
//!   sets they use; [`report`]: text and JSON.
//! - [`codec`]: lines in and out, as little work per line as possible;
//!   [`wire`]: the hot frames read into just the fields the run checks;
//!   [`body`]: a message body, inline when short.

mod agent;
mod args;
mod body;
mod check;
mod codec;
mod conn;
mod connect;
mod driver;
mod error;
mod fast_hash;
mod history;
mod probe;
mod procfs;
mod provision;
mod report;
mod stats;
mod user;
mod wire;

use std::process::ExitCode;

use clap::Parser;

use args::Args;

/// Exit status when the run could not start or finish.
const EXIT_SETUP_FAILED: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("switchboard-load: {error}");
            return ExitCode::from(EXIT_SETUP_FAILED);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads as usize)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard-load: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_SETUP_FAILED);
        }
    };
    let report = match runtime.block_on(driver::run(&args, plan)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("switchboard-load: {error}");
            return ExitCode::from(EXIT_SETUP_FAILED);
        }
    };
    // Connections and tasks are closed with the runtime, not left to linger.
    runtime.shutdown_background();
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("switchboard-load: cannot write the report: {error}");
                return ExitCode::from(EXIT_SETUP_FAILED);
            }
        }
    } else {
        println!("{report}");
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
