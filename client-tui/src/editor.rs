//! The input line: text with a cursor, editing commands, and the history of
//! sent lines (Up/Down in user mode, Alt-Up/Alt-Down in both).
//!
//! The cursor is a byte index that always sits on a character boundary.

/// How many sent lines the history keeps.
pub const HISTORY_LINES: usize = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Editor {
    text: String,
    cursor: usize,
    history: Vec<String>,
    /// While browsing: which history entry is shown, and the draft it replaced.
    browsing: Option<(usize, String)>,
}

impl Editor {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The cursor as a byte index into [`Editor::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Replaces the text (a saved draft) and puts the cursor at its end.
    pub fn set_text(&mut self, text: String) {
        self.cursor = text.len();
        self.text = text;
        self.browsing = None;
    }

    /// Takes the text out (to send it), remembering it in the history.
    pub fn take(&mut self) -> String {
        let text = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        if !text.trim().is_empty() && self.history.last() != Some(&text) {
            if self.history.len() == HISTORY_LINES {
                self.history.remove(0);
            }
            self.history.push(text.clone());
        }
        text
    }

    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    pub fn backspace(&mut self) {
        if let Some(prev) = self.prev_boundary() {
            self.text.replace_range(prev..self.cursor, "");
            self.cursor = prev;
        }
    }

    pub fn delete(&mut self) {
        if let Some(next) = self.next_boundary() {
            self.text.replace_range(self.cursor..next, "");
        }
    }

    pub fn left(&mut self) {
        if let Some(prev) = self.prev_boundary() {
            self.cursor = prev;
        }
    }

    pub fn right(&mut self) {
        if let Some(next) = self.next_boundary() {
            self.cursor = next;
        }
    }

    /// Start of the current line.
    pub fn home(&mut self) {
        self.cursor = self.line_start();
    }

    /// End of the current line.
    pub fn end(&mut self) {
        self.cursor = self.line_end();
    }

    pub fn word_left(&mut self) {
        self.cursor = self.word_start_before();
    }

    pub fn word_right(&mut self) {
        let rest = &self.text[self.cursor..];
        let skip_spaces = rest.len() - rest.trim_start().len();
        let word = rest[skip_spaces..]
            .find(char::is_whitespace)
            .unwrap_or(rest.len() - skip_spaces);
        self.cursor += skip_spaces + word;
    }

    /// Ctrl-W: delete the word before the cursor.
    pub fn delete_word_back(&mut self) {
        let start = self.word_start_before();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-U: delete from the start of the line to the cursor.
    pub fn kill_to_start(&mut self) {
        let start = self.line_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-K: delete from the cursor to the end of the line.
    pub fn kill_to_end(&mut self) {
        let end = self.line_end();
        self.text.replace_range(self.cursor..end, "");
    }

    /// Shows the previous sent line; the draft comes back past the newest.
    pub fn history_prev(&mut self) {
        let index = match &self.browsing {
            None if self.history.is_empty() => return,
            None => {
                let draft = self.text.clone();
                self.browsing = Some((self.history.len(), draft));
                self.history.len()
            }
            Some((index, _)) => *index,
        };
        if index == 0 {
            return;
        }
        self.show_history(index - 1);
    }

    pub fn history_next(&mut self) {
        let Some((index, _)) = &self.browsing else {
            return;
        };
        let next = index + 1;
        if next < self.history.len() {
            self.show_history(next);
        } else if let Some((_, draft)) = self.browsing.take() {
            self.cursor = draft.len();
            self.text = draft;
        }
    }

    fn show_history(&mut self, index: usize) {
        if let Some(line) = self.history.get(index) {
            self.text = line.clone();
            self.cursor = self.text.len();
            if let Some((shown, _)) = &mut self.browsing {
                *shown = index;
            }
        }
    }

    fn prev_boundary(&self) -> Option<usize> {
        self.text[..self.cursor]
            .char_indices()
            .next_back()
            .map(|(i, _)| i)
    }

    fn next_boundary(&self) -> Option<usize> {
        self.text[self.cursor..]
            .chars()
            .next()
            .map(|c| self.cursor + c.len_utf8())
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i)
    }

    fn word_start_before(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Editor {
        let mut e = Editor::default();
        text.chars().for_each(|c| e.insert(c));
        e
    }

    #[test]
    fn cursor_moves_by_characters() {
        let mut e = typed("héllo");
        e.left();
        e.left();
        e.left();
        e.left();
        e.backspace();
        assert_eq!(e.text(), "éllo");
        e.delete();
        assert_eq!(e.text(), "llo");
        e.end();
        e.insert('!');
        assert_eq!(e.text(), "llo!");
        e.home();
        e.insert('>');
        assert_eq!(e.text(), ">llo!");
    }

    #[test]
    fn words_and_lines() {
        let mut e = typed("one two  three");
        e.delete_word_back();
        assert_eq!(e.text(), "one two  ");
        e.word_left();
        assert_eq!(e.cursor(), 4);
        e.word_right();
        assert_eq!(e.cursor(), 7);
        let mut e = typed("first\nsecond");
        e.kill_to_start();
        assert_eq!(e.text(), "first\n");
        e.left();
        e.home();
        e.kill_to_end();
        assert_eq!(e.text(), "\n");
    }

    #[test]
    fn history_walks_back_and_restores_the_draft() {
        let mut e = typed("first");
        e.take();
        "second".chars().for_each(|c| e.insert(c));
        e.take();
        "draft".chars().for_each(|c| e.insert(c));
        e.history_prev();
        assert_eq!(e.text(), "second");
        e.history_prev();
        assert_eq!(e.text(), "first");
        e.history_prev();
        assert_eq!(e.text(), "first");
        e.history_next();
        assert_eq!(e.text(), "second");
        e.history_next();
        assert_eq!(e.text(), "draft");
    }
}
