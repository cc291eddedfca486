//! Where the binaries under test are: the harness runs what cargo already
//! built and never runs cargo itself, so a test cannot trigger a rebuild (or
//! wait for one) halfway through.

use std::path::PathBuf;

/// The `switchboard` binary: `$SWITCHBOARD_BIN`, else `target/<profile>/switchboard`.
pub fn switchboard_bin() -> PathBuf {
    built_binary("switchboard", "SWITCHBOARD_BIN")
}

/// The `switchboard-tui` binary: `$SWITCHBOARD_TUI_BIN`, else
/// `target/<profile>/switchboard-tui`.
pub fn tui_bin() -> PathBuf {
    built_binary("switchboard-tui", "SWITCHBOARD_TUI_BIN")
}

/// The binary `name`: the path in the environment variable `env` when set,
/// else `target/<profile>/<name>`, next to the `deps/` directory holding this
/// test executable. Fails the test, saying how to build it, when it is missing.
fn built_binary(name: &str, env: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe
        .parent()
        .expect("the test executable lives in a directory");
    let path = deps.join("..").join(name);
    assert!(
        path.exists(),
        "no {name} binary at {}: run `cargo build --bin {name}` first \
         (`cargo test --workspace` builds it), or set {env}",
        path.display()
    );
    path
}
