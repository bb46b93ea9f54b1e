//! The difference between two policy versions, for people: every value
//! that changed, by its path in the policy file (`rules.velocity_count.weight:
//! 0.15 -> 0.2`), and the expression rules added, removed or changed, by name.

use crate::ruleset::Ruleset;
use serde::Serialize;
use serde_json::Value;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `rules.velocity_count.weight`, `expression_rules.big_night_spend`.
    pub path: String,
    /// The value in the first version, as JSON text; `None` when absent.
    pub from: Option<String>,
    /// The value in the second version.
    pub to: Option<String>,
}

/// What differs from `a` to `b` (their versions aside), in file order.
pub fn diff(a: &Ruleset, b: &Ruleset) -> Vec<Change> {
    let (Ok(mut x), Ok(mut y)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return Vec::new();
    };
    let rules_a = take_rules(&mut x);
    let rules_b = take_rules(&mut y);
    let mut changes = Vec::new();
    walk("", &x, &y, &mut changes);
    // Expression rules are compared by name, not by position.
    for (name, rule) in &rules_a {
        let other = rules_b.iter().find(|(n, _)| n == name).map(|(_, r)| r);
        if other != Some(rule) {
            changes.push(Change {
                path: format!("expression_rules.{name}"),
                from: Some(rule.to_string()),
                to: other.map(Value::to_string),
            });
        }
    }
    for (name, rule) in &rules_b {
        if !rules_a.iter().any(|(n, _)| n == name) {
            changes.push(Change {
                path: format!("expression_rules.{name}"),
                from: None,
                to: Some(rule.to_string()),
            });
        }
    }
    changes
}

fn take_rules(policy: &mut Value) -> Vec<(String, Value)> {
    let Some(Value::Array(rules)) = policy
        .as_object_mut()
        .and_then(|o| o.remove("expression_rules"))
    else {
        return Vec::new();
    };
    rules
        .into_iter()
        .map(|r| {
            let name = r
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (name, r)
        })
        .collect()
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                if path.is_empty() && key == "version" {
                    continue;
                }
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match y.get(key) {
                    Some(other) => walk(&here, value, other, out),
                    None => out.push(Change {
                        path: here,
                        from: Some(value.to_string()),
                        to: None,
                    }),
                }
            }
            for (key, value) in y {
                if !x.contains_key(key) {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    out.push(Change {
                        path: here,
                        from: None,
                        to: Some(value.to_string()),
                    });
                }
            }
        }
        _ if a != b => out.push(Change {
            path: path.to_owned(),
            from: Some(a.to_string()),
            to: Some(b.to_string()),
        }),
        _ => {}
    }
}
