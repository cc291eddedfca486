//! The terminal: raw mode, alternate screen, mouse and bracketed paste on
//! entry; all of it undone on exit, on error (the guard's `Drop`) and on panic
//! (a hook that restores before the panic message is printed).

use std::io::{self, Stdout, stdout};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Enters the full-screen mode; keep the [`Guard`] alive while drawing.
pub fn enter() -> io::Result<(Tui, Guard)> {
    restore_on_panic(restore);
    enable_raw_mode()?;
    let guard = Guard;
    execute!(
        stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
    Ok((terminal, guard))
}

/// Runs `restore` first when anything panics, then the hook that was there
/// (which prints the message): printed into the alternate screen in raw
/// mode, the message would be lost and the shell left unusable.
fn restore_on_panic(restore: impl Fn() + Send + Sync + 'static) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Leaves the full-screen mode; safe to call more than once.
pub fn restore() {
    // Best effort: there is nowhere left to report a failure to.
    let _ = execute!(
        stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

/// Rings the terminal's bell (an alert: a new conversation waits, or an
/// urgent message came). A terminal that cannot is not worth an error.
pub fn ring_bell() {
    use std::io::Write;
    let mut out = stdout();
    let _ = out.write_all(b"\x07").and_then(|()| out.flush());
}

/// Sets the terminal window's title, e.g. `(3) switchboard`; ignored by a
/// terminal that has none.
pub fn set_title(title: &str) {
    let _ = execute!(stdout(), crossterm::terminal::SetTitle(title));
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The panic hook is global: this test installs its own "previous"
    /// hook, wraps it, panics on a thread of its own name, puts the
    /// original hook back, and looks only at what its own thread logged.
    #[test]
    fn a_panic_restores_the_terminal_before_the_message_is_printed() {
        const THREAD: &str = "panicking-on-purpose";
        let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let original = std::panic::take_hook();
        let mine = |step: &'static str, log: &Arc<Mutex<Vec<&'static str>>>| {
            if std::thread::current().name() == Some(THREAD) {
                log.lock().expect("not poisoned").push(step);
            }
        };
        let printed = Arc::clone(&log);
        std::panic::set_hook(Box::new(move |_| mine("message printed", &printed)));
        let restored = Arc::clone(&log);
        restore_on_panic(move || mine("terminal restored", &restored));
        let outcome = std::thread::Builder::new()
            .name(THREAD.into())
            .spawn(|| panic!("on purpose"))
            .expect("spawns")
            .join();
        std::panic::set_hook(original);
        assert!(outcome.is_err(), "the thread panicked");
        assert_eq!(
            *log.lock().expect("not poisoned"),
            ["terminal restored", "message printed"]
        );
    }
}
