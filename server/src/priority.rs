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
}

#[derive(Debug, Error)]
pub enum RulesError {
    #[error("cannot read the priority rules file: {0}")]
    Read(#[from] std::io::Error),
    #[error(
        "the priority rules must be a JSON object like \
         {{\"urgent\": [\"outage\"], \"high\": [\"refund\"], \"low\": [\"thanks\"]}}: {0}"
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
        let entry = self.words.entry(word.to_lowercase()).or_insert(priority);
        *entry = (*entry).max(priority);
    }

    pub fn classify(&self, body: &str) -> Priority {
        body.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .filter_map(|word| {
                if word.chars().any(char::is_uppercase) {
                    self.words.get(&word.to_lowercase()).copied()
                } else {
                    self.words.get(word).copied()
                }
            })
            .max()
            .unwrap_or(Priority::Normal)
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
