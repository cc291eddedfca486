//! The help overlay on screen: every key listed, each line whole at the
//! usual widths.

use super::*;

#[test]
fn agent_help_lists_every_key() {
    let mut app = online(Mode::Agent, "alice", (90, 30));
    update(&mut app, Msg::Action(Action::ToggleHelp));
    let rows = screen(&app);
    for key in ["Ctrl-R", "Alt-A", "Alt-Enter", "Ctrl-C", "PgUp / PgDn"] {
        assert!(contains(&rows, key), "{key} missing:\n{}", rows.join("\n"));
    }
}

/// The words inside the help overlay's border, in reading order.
fn help_words(rows: &[String]) -> Vec<String> {
    let text = rows.join("\n");
    let top = row_of(rows, "keys · Esc closes");
    let top_row: Vec<char> = rows[top].chars().collect();
    let left = top_row.iter().position(|c| *c == '┌');
    let right = top_row.iter().position(|c| *c == '┐');
    let (Some(left), Some(right)) = (left, right) else {
        panic!("no top border on row {top}:\n{text}");
    };
    rows[top + 1..]
        .iter()
        .map(|row| row.chars().collect::<Vec<char>>())
        .take_while(|row| row.get(left) != Some(&'└'))
        .flat_map(|row| {
            let inside: String = row
                .get(left + 1..right)
                .unwrap_or_default()
                .iter()
                .collect();
            inside
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A newcomer saw `most urgen│` at 120 columns: descriptions longer than
/// the overlay were cut at its border. Every key and description must be
/// there word for word (wrapped lines read on from one another).
#[test]
fn help_shows_every_line_whole_at_120_and_80_columns() {
    for mode in [Mode::Agent, Mode::User] {
        for size in [(120, 30), (80, 24)] {
            let mut app = online(mode, "alice", size);
            update(&mut app, Msg::Action(Action::ToggleHelp));
            let rows = screen(&app);
            let words = help_words(&rows);
            for (keys, what) in keymap::help(mode) {
                for text in [keys, what] {
                    let wanted: Vec<&str> = text.split_whitespace().collect();
                    assert!(
                        words.windows(wanted.len()).any(|w| w == wanted.as_slice()),
                        "{mode:?} at {size:?}: {text:?} is not whole:\n{}",
                        rows.join("\n")
                    );
                }
            }
        }
    }
}
