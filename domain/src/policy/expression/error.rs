//! What can go wrong with an expression rule: refused at publish time
//! ([`ExpressionError`], with where and, for a misspelt name, a suggestion)
//! or, rarely, while deciding ([`EvalError`]). The messages are read by the
//! analyst who wrote the rule, so they name things as the rule does.

use std::fmt;

/// Where in the expression: 1-based line and column, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// The position of byte `offset` of `source` (clamped to the source).
    pub(super) fn at_byte(source: &str, offset: usize) -> Position {
        let mut line = 1;
        let mut column = 1;
        for (i, c) in source.char_indices() {
            if i >= offset {
                break;
            }
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Most rules are one line: "column 12" reads better there.
        if self.line == 1 {
            write!(f, "column {}", self.column)
        } else {
            write!(f, "line {}, column {}", self.line, self.column)
        }
    }
}

/// The three types of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Number,
    String,
    Bool,
}

impl Type {
    /// "a number", for sentences.
    pub fn with_article(self) -> &'static str {
        match self {
            Type::Number => "a number",
            Type::String => "a string",
            Type::Bool => "a bool",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Number => "number",
            Type::String => "string",
            Type::Bool => "bool",
        })
    }
}

/// Why an expression was refused (at publish time, before it can decide).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpressionError {
    #[error("the expression is empty")]
    Empty,
    #[error("the expression is too long ({chars} characters; at most {max})")]
    TooLong { chars: usize, max: usize },
    #[error("the expression is nested too deeply at {at} (at most {max} levels)")]
    TooDeep { at: Position, max: usize },
    #[error("syntax error at {at}: {message}")]
    Syntax { at: Position, message: String },
    #[error("unknown feature f.{name}{} at {at}", did_you_mean(.suggestion))]
    UnknownFeature {
        at: Position,
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown transaction field tx.{name}{} at {at}", did_you_mean(.suggestion))]
    UnknownField {
        at: Position,
        name: String,
        suggestion: Option<String>,
    },
    #[error(
        "unknown name {name}{} at {at} (an expression reads tx.FIELD and f.FEATURE)",
        did_you_mean(.suggestion)
    )]
    UnknownName {
        at: Position,
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown function {name}{} at {at}", did_you_mean(.suggestion))]
    UnknownFunction {
        at: Position,
        name: String,
        suggestion: Option<String>,
    },
    /// Operands or arguments of the wrong type, or a misused function.
    #[error("{message} at {at}")]
    Type { at: Position, message: String },
    #[error("the expression is {}, a rule needs true or false", .found.with_article())]
    NotBool { found: Type },
    #[error("{what} not supported in expression rules (at {at})")]
    Unsupported { at: Position, what: String },
    /// A comparison with a value the field never has (`tx.transaction_type
    /// == 'withdrawl'`, `tx.country == 'ng'`): the rule could never fire.
    #[error("{field} is never '{value}' ({hint}) at {at}")]
    NeverMatches {
        at: Position,
        field: String,
        value: String,
        hint: String,
    },
}

impl ExpressionError {
    /// Where the problem is, when it is at one place.
    pub fn position(&self) -> Option<Position> {
        match self {
            ExpressionError::Empty
            | ExpressionError::TooLong { .. }
            | ExpressionError::NotBool { .. } => None,
            ExpressionError::TooDeep { at, .. }
            | ExpressionError::Syntax { at, .. }
            | ExpressionError::UnknownFeature { at, .. }
            | ExpressionError::UnknownField { at, .. }
            | ExpressionError::UnknownName { at, .. }
            | ExpressionError::UnknownFunction { at, .. }
            | ExpressionError::Type { at, .. }
            | ExpressionError::Unsupported { at, .. }
            | ExpressionError::NeverMatches { at, .. } => Some(*at),
        }
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map_or_else(String::new, |s| format!(" (did you mean {s}?)"))
}

/// Why a compiled expression could not say true or false for one
/// transaction: only what the type check cannot know ahead. The caller
/// counts the rule as not fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("tx.{field} is absent from this transaction (guard it with has(tx.{field}))")]
    Absent { field: &'static str },
}

/// The candidate closest to `name` by edit distance, if it is close enough
/// to be a likely typo (a third of the name's length, at least 1 edit, at
/// most 3).
pub(super) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_ascii_lowercase(), c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps), by
/// characters; names are short, so the full table is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_typos() {
        assert_eq!(edit_distance("amout", "amount"), 1);
        assert_eq!(edit_distance("amuont", "amount"), 1);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn only_close_names_are_suggested() {
        let names = ["amount", "count_1h", "sum_1h"];
        assert_eq!(closest("amout", names), Some("amount"));
        assert_eq!(closest("count_1", names), Some("count_1h"));
        assert_eq!(closest("velocity", names), None);
    }

    #[test]
    fn positions_count_characters_and_lines() {
        assert_eq!(
            Position::at_byte("'é' + x", 6),
            Position { line: 1, column: 6 }
        );
        let p = Position::at_byte("a &&\n  b", 7);
        assert_eq!(p, Position { line: 2, column: 3 });
        assert_eq!(p.to_string(), "line 2, column 3");
        assert_eq!(Position::at_byte("ab", 99).to_string(), "column 3");
    }
}
