//! Expression rules: CEL over `tx.*` and `f.*` (a stand-in while the
//! compiler is written: compiles anything non-empty, never fires).

use crate::features::Features;
use crate::transaction::Transaction;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    source: String,
    reads: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ExpressionError(pub String);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Compiled {
    pub fn compile(source: &str) -> Result<Compiled, ExpressionError> {
        if source.trim().is_empty() {
            return Err(ExpressionError("empty expression".into()));
        }
        Ok(Compiled {
            source: source.to_owned(),
            reads: Vec::new(),
        })
    }
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn evaluate(&self, _tx: &Transaction, _features: &Features) -> Result<bool, EvalError> {
        Ok(false)
    }
    pub fn reads(&self) -> &[String] {
        &self.reads
    }
    pub fn observed(&self, _tx: &Transaction, _features: &Features) -> Vec<(String, String)> {
        Vec::new()
    }
}
