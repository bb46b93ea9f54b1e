//! Bounded free text: trimmed, non-empty, length-limited, no control
//! characters (which would break log lines and CSV exports). One type per
//! kind of text so a city can never be passed where a note is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a piece of free text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("is too long")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Trims `text` and checks it is 1..=`max_chars` characters without control
/// characters.
fn clean_text(text: &str, max_chars: usize) -> Result<&str, TextError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty);
    }
    if trimmed.chars().count() > max_chars {
        return Err(TextError::TooLong);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    Ok(trimmed)
}

/// Declares a bounded text type; `$normalise` maps the cleaned text to the
/// stored form.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:expr, $normalise:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(text: &str) -> Result<$name, TextError> {
                let normalise: fn(&str) -> String = $normalise;
                clean_text(text, $max).map(|t| $name(normalise(t)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(text: String) -> Result<$name, TextError> {
                $name::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(
    /// A merchant category (`"grocery"`), stored lower case so `"Grocery"`
    /// and `"grocery"` are one category for the `new_category` rule.
    MerchantCategory,
    64,
    |t| t.to_lowercase()
);
bounded_text!(
    /// A city or state name, as sent (trimmed).
    PlaceName,
    100,
    str::to_owned
);
bounded_text!(
    /// A device's user agent, bounded so one client cannot bloat the log.
    UserAgent,
    512,
    str::to_owned
);

bounded_text!(
    /// Who acted on an alert (an analyst's name or login).
    Analyst,
    100,
    str::to_owned
);
bounded_text!(
    /// An analyst's free-text note.
    Note,
    2000,
    str::to_owned
);
bounded_text!(
    /// Where a fraud label came from (`"chargeback"`, `"analyst"`), lower case.
    LabelSource,
    64,
    |t| t.to_lowercase()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text() {
        assert_eq!(
            MerchantCategory::parse(" Grocery ").unwrap().as_str(),
            "grocery"
        );
        assert_eq!(PlaceName::parse("  "), Err(TextError::Empty));
        assert_eq!(
            PlaceName::parse("a\u{7}b"),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(UserAgent::parse(&"x".repeat(513)), Err(TextError::TooLong));
        assert!(UserAgent::parse(&"x".repeat(512)).is_ok());
    }
}
