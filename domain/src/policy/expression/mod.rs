//! Expression rules: analysts' fraud rules written in a subset of CEL (the
//! Common Expression Language) over the transaction (`tx.*`) and the
//! feature catalogue (`f.*`).
//!
//! cel-rust only parses; we compile its syntax tree into a small typed tree
//! of our own, with every name resolved to a slot and every type checked
//! when the policy is published, so an expression that does not type-check
//! against the catalogue never reaches a decision, and evaluating one is a
//! walk of a few nodes with no allocation (measured: `cargo bench -p domain
//! --bench expressions`).
//!
//! # The language
//!
//! An expression rule is one expression that is `true` (the rule fires) or
//! `false`.
//!
//! **Types.** Three: *number* (every value and every literal, `1`, `1u`,
//! `2.5`, is a 64-bit float, so `1 == 1.0`), *string* (`'NG'` or `"NG"`) and
//! *bool* (`true`, `false`). A list exists only written out after `in`.
//!
//! **Features: `f.NAME`**, for every feature of the catalogue
//! (`domain::features::CATALOGUE`, e.g. `f.amount_to_mean`, `f.count_1h`), a
//! number. A feature may be *unknown* (no history, no place...): it is then
//! NaN, and, as in IEEE arithmetic, every comparison with it is false except
//! `!=`, which is true, and arithmetic on it stays unknown. So `f.x > 3` does
//! not fire on an unknown `f.x`, but `!(f.x <= 3)` and `f.x != 3` do: write
//! `has(f.x) && ...` to say what you mean. `has(f.NAME)` is true when the
//! feature is known.
//!
//! **The transaction: `tx.FIELD`.**
//!
//! | field | type | |
//! |---|---|---|
//! | `tx.amount` | number | in the transaction's own currency |
//! | `tx.currency` | string | ISO 4217, upper case: `'USD'` |
//! | `tx.customer_id` | string | |
//! | `tx.merchant_id` | string | |
//! | `tx.category` | string | the merchant category, lower case: `'grocery'` |
//! | `tx.transaction_type` | string | `'purchase'`, `'refund'`, `'withdrawal'` |
//! | `tx.payment_method` | string | `'credit_card'`, `'debit_card'`, `'digital_wallet'` |
//! | `tx.device_type` | string | `'mobile'`, `'web'`, `'pos'` |
//! | `tx.country` | string | ISO 3166 alpha-2, upper case: `'NG'` |
//! | `tx.city` | string | as sent |
//! | `tx.hour_local` | number | the feature `local_hour` (may be unknown) |
//! | `tx.card_present` | bool | at a terminal or an ATM, with a place |
//!
//! Every field but `amount`, `customer_id`, `hour_local` and `card_present`
//! may be absent (schema v1 input, card-not-present without a place):
//! `has(tx.merchant_id)` tests it. Reading an absent field is an evaluation
//! error and the rule does not fire, unless the rest of a `&&` or `||`
//! decides without it (below). Comparing a field with a value it can never
//! have (`tx.transaction_type == 'withdrawl'`, `tx.country == 'ng'`,
//! `tx.category == 'Grocery'`) is refused at publish time.
//!
//! **Operators**, by type; both sides must have the same type:
//!
//! - `!`, `&&`, `||` on bools. `&&` and `||` stop as soon as the left side
//!   decides, and, as in CEL, an error on one side is ignored when the other
//!   side decides: `!has(tx.country) || tx.country != 'NG'` never fails, and
//!   neither does `tx.country == 'NG' || f.amount > 1000` when `f.amount >
//!   1000`.
//! - `c ? a : b`: `c` a bool, `a` and `b` of one type.
//! - `==`, `!=` on two numbers, two strings or two bools; `<`, `<=`, `>`,
//!   `>=` on two numbers or two strings (by code point).
//! - `+`, `-`, `*`, `/`, `%` and unary `-` on numbers (IEEE: `x / 0` is
//!   infinite or NaN, not an error; `%` is the float remainder); `+` also
//!   joins two strings.
//! - `x in [a, b, ...]`: `x` a number or a string, the list written out with
//!   values of that type (`tx.country in ['NG', 'RU']`, `f.local_hour in
//!   [1, 2, 3]`).
//!
//! **Functions**: `size(s)` or `s.size()` (characters of a string),
//! `s.startsWith(x)`, `s.endsWith(x)`, `s.contains(x)`, `s.lowerAscii()`,
//! `double(n)` (the number itself), `int(n)` (towards zero). Not standard
//! CEL, our extension: `max(a, b, ...)` and `min(a, b, ...)` of numbers,
//! unknown if any of them is.
//!
//! Everything else of CEL (other names, `null`, bytes, maps, indexing,
//! list macros such as `all` and `exists`, other functions) is refused at
//! publish time, with the reason and the column.

mod compile;
mod error;
mod tree;

#[cfg(test)]
mod tests;

pub use error::{EvalError, ExpressionError, Position, Type};

use crate::features::Features;
use crate::transaction::Transaction;
use std::fmt;
use std::sync::Arc;
use tree::{Bool, Input, Var};

/// An expression rule as written in a policy (TOML `[[expression_rules]]` /
/// JSON).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressionRule {
    pub name: String,
    pub expression: String,
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

impl ExpressionRule {
    /// Compiles this rule's expression.
    pub fn compile(&self) -> Result<Compiled, ExpressionError> {
        Compiled::compile(&self.expression)
    }
}

/// A compiled, type-checked boolean expression. Cloning is cheap (shared);
/// it is `Send + Sync`.
#[derive(Clone)]
pub struct Compiled(Arc<Inner>);

struct Inner {
    source: String,
    root: Bool,
    reads: Vec<String>,
    vars: Vec<Var>,
}

impl Compiled {
    /// Parses and type-checks `source`; the result must be a bool. The
    /// error says what is wrong and where.
    pub fn compile(source: &str) -> Result<Compiled, ExpressionError> {
        let out = compile::compile(source)?;
        Ok(Compiled(Arc::new(Inner {
            source: source.to_owned(),
            root: out.root,
            reads: out.reads,
            vars: out.vars,
        })))
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// `true`: the rule fires. Never panics. An error only for what the type
    /// check cannot know ahead (an absent optional `tx` field read outside
    /// `has()`); the caller counts the rule as not fired.
    pub fn evaluate(&self, tx: &Transaction, features: &Features) -> Result<bool, EvalError> {
        self.0.root.eval(Input { tx, features })
    }

    /// The variables the expression reads, in source order, each once:
    /// `"f.amount"`, `"tx.country"`...
    pub fn reads(&self) -> &[String] {
        &self.0.reads
    }

    /// The values it read, for the explanation of a hit, in the order of
    /// [`Compiled::reads`]: `[("f.amount", "950"), ("tx.country", "NG")]`.
    /// Numbers are printed briefly, an unknown feature as `"unknown"`, an
    /// absent field as `"absent"`.
    pub fn observed(&self, tx: &Transaction, features: &Features) -> Vec<(String, String)> {
        let input = Input { tx, features };
        self.0
            .reads
            .iter()
            .zip(&self.0.vars)
            .map(|(name, var)| (name.clone(), var.show(input)))
            .collect()
    }
}

impl PartialEq for Compiled {
    fn eq(&self, other: &Compiled) -> bool {
        self.source() == other.source()
    }
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Compiled").field(&self.source()).finish()
    }
}
