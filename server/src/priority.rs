//! Message priority from words: the server, not the client, decides how
//! urgent a customer's message is.
//!
//! Rules map whole words (case-insensitive) to a priority; a message gets
//! the highest priority any of its words has, or `normal` when none matches.
//! `switchboard serve --priority-rules FILE` replaces the defaults with a JSON
//! object such as `{"urgent": ["outage"], "high": ["invoice"], "low": ["thanks"]}`.

use std::collections::HashMap;
use std::path::Path;

use switchboard_protocol::Priority;
use thiserror::Error;

/// The defaults from the protocol document.
const DEFAULT_RULES: &[(Priority, &[&str])] = &[
    (
        Priority::Urgent,
        &["urgent", "emergency", "fraud", "hacked", "stolen"],
    ),
    (
        Priority::High,
        &["refund", "payment", "charged", "locked", "cancel"],
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityRules {
    /// Lower-case word → the priority it gives.
    words: HashMap<String, Priority>,
    /// Bit `n` is set when an ASCII word in `words` is `n` bytes long (bit
    /// 63: 63 or longer). Lower-casing keeps an ASCII word's length, so a
    /// word of any other length is not looked up at all: most words of a
    /// message are passed over without hashing.
    ascii_lengths: u64,
}

/// ASCII words up to this long are lower-cased on the stack.
const STACK_WORD_BYTES: usize = 32;

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

#[derive(Debug, Error)]
pub enum RulesError {
    // Each cause is the error's `source`, printed once after its message
    // by whoever reports the chain (`main`): not in the message too.
    #[error("cannot read the priority rules file")]
    Read(#[from] std::io::Error),
    #[error(
        "the priority rules must be a JSON object like \
         {{\"urgent\": [\"outage\"], \"high\": [\"refund\"], \"low\": [\"thanks\"]}}"
    )]
    Shape(#[from] serde_json::Error),
    #[error("unknown priority {0:?} in the rules (use urgent, high, normal or low)")]
    UnknownPriority(String),
    #[error("{0:?} is not a single word: rules match whole words of letters and digits")]
    NotAWord(String),
}

impl Default for PriorityRules {
    fn default() -> Self {
        let mut rules = Self {
            words: HashMap::new(),
            ascii_lengths: 0,
        };
        for (priority, words) in DEFAULT_RULES {
            for word in *words {
                rules.add(word, *priority);
            }
        }
        rules
    }
}

impl PriorityRules {
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        Self::from_json(&std::fs::read_to_string(path)?)
    }

    pub fn from_json(text: &str) -> Result<Self, RulesError> {
        let by_priority: HashMap<String, Vec<String>> = serde_json::from_str(text)?;
        let mut rules = Self {
            words: HashMap::new(),
            ascii_lengths: 0,
        };
        for (priority, words) in by_priority {
            let priority =
                Priority::parse(&priority).ok_or(RulesError::UnknownPriority(priority))?;
            for word in words {
                if word.is_empty() || !word.chars().all(char::is_alphanumeric) {
                    return Err(RulesError::NotAWord(word));
                }
                rules.add(&word, priority);
            }
        }
        Ok(rules)
    }

    /// A word listed under two priorities counts for the higher.
    fn add(&mut self, word: &str, priority: Priority) {
        let word = word.to_lowercase();
        if word.is_ascii() {
            self.ascii_lengths |= length_bit(word.len());
        }
        let entry = self.words.entry(word).or_insert(priority);
        *entry = (*entry).max(priority);
    }

    /// Runs on every customer message, so the common case (short ASCII
    /// words) allocates nothing.
    pub fn classify(&self, body: &str) -> Priority {
        body.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .filter_map(|word| self.priority_of(word))
            .max()
            .unwrap_or(Priority::Normal)
    }

    fn priority_of(&self, word: &str) -> Option<Priority> {
        if !word.is_ascii() {
            return self.words.get(&word.to_lowercase()).copied();
        }
        if self.ascii_lengths & length_bit(word.len()) == 0 {
            return None;
        }
        if !word.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.words.get(word).copied();
        }
        let mut lower = [0u8; STACK_WORD_BYTES];
        match lower.get_mut(..word.len()) {
            Some(lower) => {
                lower.copy_from_slice(word.as_bytes());
                lower.make_ascii_lowercase();
                // ASCII in, ASCII out.
                let lower = std::str::from_utf8(lower).ok()?;
                self.words.get(lower).copied()
            }
            None => self.words.get(&word.to_ascii_lowercase()).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_match_whole_words_in_any_case() {
        let rules = PriorityRules::default();
        assert_eq!(rules.classify("My account was HACKED!"), Priority::Urgent);
        assert_eq!(rules.classify("I was charged twice"), Priority::High);
        assert_eq!(rules.classify("refund, then fraud."), Priority::Urgent);
        assert_eq!(rules.classify("urgently need help"), Priority::Normal);
        assert_eq!(rules.classify("payments page"), Priority::Normal);
        assert_eq!(rules.classify("hello"), Priority::Normal);
        assert_eq!(rules.classify("re:cancel"), Priority::High);
        assert_eq!(rules.classify("EMERGENCY"), Priority::Urgent);
        assert_eq!(rules.classify("emergencyy"), Priority::Normal);
    }

    #[test]
    fn rule_words_of_any_script_and_length_match() {
        let rules = PriorityRules::from_json(
            r#"{"urgent":["Überweisung"],"high":["supercalifragilisticexpialidociousness"]}"#,
        )
        .expect("valid rules");
        assert_eq!(rules.classify("meine ÜBERWEISUNG fehlt"), Priority::Urgent);
        assert_eq!(
            rules.classify("SUPERCALIFRAGILISTICEXPIALIDOCIOUSNESS!"),
            Priority::High,
            "longer than the stack buffer"
        );
        assert_eq!(rules.classify("überweisungen"), Priority::Normal);
        let long = "x".repeat(70);
        let rules = PriorityRules::from_json(&format!(r#"{{"low":["{long}"]}}"#)).expect("valid");
        assert_eq!(
            rules.classify(&format!("so {}!", long.to_uppercase())),
            Priority::Low
        );
        assert_eq!(rules.classify(&"x".repeat(69)), Priority::Normal);
    }

    #[test]
    fn a_rules_file_replaces_the_defaults() {
        let rules =
            PriorityRules::from_json(r#"{"urgent":["Outage"],"low":["thanks"],"high":["thanks"]}"#)
                .expect("valid rules");
        assert_eq!(rules.classify("total outage"), Priority::Urgent);
        assert_eq!(rules.classify("fraud"), Priority::Normal);
        assert_eq!(
            rules.classify("thanks!"),
            Priority::High,
            "the higher listing wins"
        );
        let low = PriorityRules::from_json(r#"{"low":["thanks"]}"#).expect("valid rules");
        assert_eq!(low.classify("thanks a lot"), Priority::Low);
    }

    #[test]
    fn bad_rules_files_say_what_is_wrong() {
        assert!(matches!(
            PriorityRules::from_json(r#"{"critical":["x"]}"#),
            Err(RulesError::UnknownPriority(p)) if p == "critical"
        ));
        assert!(matches!(
            PriorityRules::from_json(r#"{"high":["two words"]}"#),
            Err(RulesError::NotAWord(_))
        ));
        assert!(matches!(
            PriorityRules::from_json(r#"["x"]"#),
            Err(RulesError::Shape(_))
        ));
    }
}
