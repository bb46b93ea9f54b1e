//! Gradient-boosted trees as the command side runs them: flat arrays of
//! nodes, walked without allocation. Training (fraudctl, ADR 0016) converts
//! the trainer's trees into this shape, so scoring needs no ML crate and the
//! artifact in the log is ours to read for as long as the log lives.
//!
//! A split sends a value to `left` when it is below `threshold`, to `right`
//! otherwise, and an unknown value (NaN) to `missing`. Every node keeps its
//! own weight (the tree's output had it been a leaf), which is what the
//! per-feature contributions are measured with (Saabas: the change of
//! weight along the path, charged to the feature that split).

use serde::{Deserialize, Serialize};

/// One node. A leaf has `left == 0` (the root is never anyone's child).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The split's feature: a column of the model's `features`.
    #[serde(rename = "f")]
    pub feature: u16,
    #[serde(rename = "t")]
    pub threshold: f64,
    #[serde(rename = "l")]
    pub left: u32,
    #[serde(rename = "r")]
    pub right: u32,
    #[serde(rename = "m")]
    pub missing: u32,
    /// The node's weight, in log-odds.
    #[serde(rename = "w")]
    pub weight: f32,
}

impl Node {
    pub fn leaf(weight: f32) -> Node {
        Node {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            missing: 0,
            weight,
        }
    }

    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }

    fn next(&self, value: f64) -> usize {
        let i = if value.is_nan() {
            self.missing
        } else if value < self.threshold {
            self.left
        } else {
            self.right
        };
        i as usize
    }
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// Why a forest cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForestError {
    #[error("tree {tree} is empty")]
    Empty { tree: usize },
    #[error("tree {tree}, node {node}: child {child} is not a later node of the tree")]
    BadChild {
        tree: usize,
        node: usize,
        child: u32,
    },
    #[error("tree {tree}, node {node}: feature {feature} is not one of the {columns} columns")]
    BadFeature {
        tree: usize,
        node: usize,
        feature: u16,
        columns: usize,
    },
}

/// The ensemble: `base_score + Σ tree outputs`, in log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub base_score: f64,
    pub trees: Vec<Tree>,
}

impl Forest {
    /// Checks every child index points forward inside its tree (so a walk
    /// always ends) and every feature is one of `columns`.
    pub fn check(&self, columns: usize) -> Result<(), ForestError> {
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.nodes.is_empty() {
                return Err(ForestError::Empty { tree: t });
            }
            for (n, node) in tree.nodes.iter().enumerate() {
                if node.is_leaf() {
                    continue;
                }
                for child in [node.left, node.right, node.missing] {
                    if child as usize <= n || child as usize >= tree.nodes.len() {
                        return Err(ForestError::BadChild {
                            tree: t,
                            node: n,
                            child,
                        });
                    }
                }
                if usize::from(node.feature) >= columns {
                    return Err(ForestError::BadFeature {
                        tree: t,
                        node: n,
                        feature: node.feature,
                        columns,
                    });
                }
            }
        }
        Ok(())
    }

    /// The log-odds for a row of column values (`row[feature]`). The forest
    /// must have passed [`Forest::check`] against `row.len()` columns.
    pub fn raw(&self, row: &[f64]) -> f64 {
        let mut sum = self.base_score;
        for tree in &self.trees {
            let mut i = 0;
            while let Some(node) = tree.nodes.get(i) {
                if node.is_leaf() {
                    sum += f64::from(node.weight);
                    break;
                }
                i = node.next(
                    row.get(usize::from(node.feature))
                        .copied()
                        .unwrap_or(f64::NAN),
                );
            }
        }
        sum
    }

    /// Adds each column's contribution to the log-odds of `row` into
    /// `out[column]` and returns the bias (base score plus the roots'
    /// weights): bias + Σ out = [`Forest::raw`].
    pub fn contributions(&self, row: &[f64], out: &mut [f64]) -> f64 {
        let mut bias = self.base_score;
        for tree in &self.trees {
            let Some(root) = tree.nodes.first() else {
                continue;
            };
            bias += f64::from(root.weight);
            let mut i = 0;
            while let Some(node) = tree.nodes.get(i) {
                if node.is_leaf() {
                    break;
                }
                let column = usize::from(node.feature);
                let next = node.next(row.get(column).copied().unwrap_or(f64::NAN));
                let Some(child) = tree.nodes.get(next) else {
                    break;
                };
                if let Some(slot) = out.get_mut(column) {
                    *slot += f64::from(child.weight) - f64::from(node.weight);
                }
                i = next;
            }
        }
        bias
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x0 < 10 ? (x1 < 1 ? -2 : 1) : 3, missing x0 goes right.
    fn stump() -> Forest {
        let split = |feature, threshold, left, right, missing, weight| Node {
            feature,
            threshold,
            left,
            right,
            missing,
            weight,
        };
        Forest {
            base_score: -1.0,
            trees: vec![Tree {
                nodes: vec![
                    split(0, 10.0, 1, 2, 2, 0.5),
                    split(1, 1.0, 3, 4, 3, -0.5),
                    Node::leaf(3.0),
                    Node::leaf(-2.0),
                    Node::leaf(1.0),
                ],
            }],
        }
    }

    #[test]
    fn walks_left_right_and_missing() {
        let f = stump();
        assert!(f.check(2).is_ok());
        assert_eq!(f.raw(&[5.0, 0.0]), -3.0);
        assert_eq!(f.raw(&[5.0, 2.0]), 0.0);
        assert_eq!(f.raw(&[10.0, 0.0]), 2.0);
        assert_eq!(f.raw(&[f64::NAN, 0.0]), 2.0);
        assert_eq!(f.raw(&[5.0, f64::NAN]), -3.0);
    }

    #[test]
    fn contributions_add_up_to_the_score() {
        let f = stump();
        for row in [[5.0, 0.0], [5.0, 2.0], [12.0, 0.0], [f64::NAN, f64::NAN]] {
            let mut out = [0.0; 2];
            let bias = f.contributions(&row, &mut out);
            assert!((bias + out.iter().sum::<f64>() - f.raw(&row)).abs() < 1e-9);
        }
        let mut out = [0.0; 2];
        f.contributions(&[5.0, 0.0], &mut out);
        assert_eq!(out, [-1.0, -1.5]);
    }

    #[test]
    fn refuses_loops_and_unknown_columns() {
        let mut f = stump();
        f.trees[0].nodes[1].left = 1;
        assert!(matches!(f.check(2), Err(ForestError::BadChild { .. })));
        let f = stump();
        assert!(matches!(f.check(1), Err(ForestError::BadFeature { .. })));
    }
}
