//! `switchboard-tui`: the terminal client. A placeholder until its own issue
//! (user mode and agent mode on ratatui); it exists so the workspace layout is
//! complete and the binary name is reserved.

fn main() {
    eprintln!("switchboard-tui is not built yet: use `nc 127.0.0.1 7878` (see README.md)");
    std::process::exit(2);
}
