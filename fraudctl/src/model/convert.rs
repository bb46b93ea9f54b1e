//! forust's trees into `domain::model::Forest`, the shape the command side
//! scores with (ADR 0016): nodes renumbered breadth first from the root so
//! every child comes after its parent (what `Forest::check` asks), leaves
//! marked by `left == 0`, every node keeping its weight (forust's weights
//! already carry the learning rate; the tests check the sums agree).

use anyhow::Context;
use domain::model::{Forest, Node, Tree};
use forust_ml::GradientBooster;
use std::collections::{HashMap, VecDeque};

/// The booster's trees up to its best iteration (early stopping keeps the
/// later ones but predicts without them) as our forest.
pub fn forest(booster: &GradientBooster) -> anyhow::Result<Forest> {
    let used = booster
        .prediction_iteration
        .unwrap_or(booster.trees.len())
        .min(booster.trees.len());
    let trees = booster.trees[..used]
        .iter()
        .enumerate()
        .map(|(t, tree)| convert(tree).with_context(|| format!("converting tree {t}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Forest {
        base_score: booster.base_score,
        trees,
    })
}

fn convert(tree: &forust_ml::tree::Tree) -> anyhow::Result<Tree> {
    let nodes = &tree.nodes;
    anyhow::ensure!(!nodes.is_empty(), "an empty tree");
    // Children are named by `num`; look them up rather than trusting that
    // `num` is the index.
    let by_num: HashMap<usize, usize> = nodes.iter().enumerate().map(|(i, n)| (n.num, i)).collect();
    let root = by_num.get(&0).copied().unwrap_or(0);
    let mut order = Vec::with_capacity(nodes.len());
    let mut new_id: HashMap<usize, u32> = HashMap::new();
    let mut queue = VecDeque::from([root]);
    while let Some(i) = queue.pop_front() {
        if new_id.contains_key(&i) {
            continue;
        }
        new_id.insert(i, u32::try_from(order.len())?);
        order.push(i);
        let n = &nodes[i];
        if !n.is_leaf {
            for child in [n.left_child, n.right_child, n.missing_node] {
                let c = *by_num
                    .get(&child)
                    .with_context(|| format!("node {} names a missing child {child}", n.num))?;
                queue.push_back(c);
            }
        }
    }
    let id = |num: usize| -> anyhow::Result<u32> {
        by_num
            .get(&num)
            .and_then(|i| new_id.get(i))
            .copied()
            .with_context(|| format!("node {num} is not reachable"))
    };
    let mut out = Vec::with_capacity(order.len());
    for &i in &order {
        let n = &nodes[i];
        if n.is_leaf {
            out.push(Node::leaf(n.weight_value));
        } else {
            out.push(Node {
                feature: u16::try_from(n.split_feature)?,
                threshold: n.split_value,
                left: id(n.left_child)?,
                right: id(n.right_child)?,
                missing: id(n.missing_node)?,
                weight: n.weight_value,
            });
        }
    }
    Ok(Tree { nodes: out })
}
