//! A model for benchmarks, with no trainer: a forest of full trees of a
//! given depth over every catalogue feature, built deterministically (a
//! fixed-seed generator), each split at a value one of the given rows has
//! for its feature (so walks go both ways, as a trained forest's do), and
//! small leaf weights. Its scores mean nothing; its cost per transaction is
//! a trained forest's of the same shape (every walk goes `depth` splits
//! deep). One home for `cargo bench -p domain --bench decide` and
//! `fraudctl bench ingest --model-trees`.

use super::drift::{Bins, Reference};
use super::{Forest, Model, Node, Training, Tree};
use crate::features::{CATALOGUE, Features, VERSION};
use chrono::{DateTime, Utc};

/// xorshift64*: deterministic, good enough to spread splits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `trees` full trees of `depth` splits over all catalogue features, split
/// at values `rows` have, recorded as trained `at`. With no rows, splits
/// fall anywhere in 0..1.
pub fn forest(rows: &[Features], trees: usize, depth: u32, at: DateTime<Utc>) -> Model {
    let columns = CATALOGUE.len();
    let mut rng = Rng(0x5e47_1e1e_2026_0019);
    let internal = (1usize << depth) - 1;
    let total = (1usize << (depth + 1)) - 1;
    let trees = (0..trees)
        .map(|_| {
            let nodes = (0..total)
                .map(|i| {
                    let weight = ((rng.unit() - 0.5) * 0.2) as f32;
                    if i >= internal {
                        return Node::leaf(weight);
                    }
                    let feature = rng.below(columns);
                    let value = if rows.is_empty() {
                        f64::NAN
                    } else {
                        rows[rng.below(rows.len())].values()[feature]
                    };
                    // An unknown value in the sample: split anywhere.
                    let threshold = if value.is_nan() { rng.unit() } else { value };
                    let left = (2 * i + 1) as u32;
                    Node {
                        feature: feature as u16,
                        threshold,
                        left,
                        right: left + 1,
                        missing: if rng.below(2) == 0 { left } else { left + 1 },
                        weight,
                    }
                })
                .collect();
            Tree { nodes }
        })
        .collect();
    let column_values = |c: usize| rows.iter().map(|r| r.values()[c]).collect::<Vec<_>>();
    Model {
        version: "bench-forest".into(),
        catalogue_version: VERSION,
        features: CATALOGUE.iter().map(|f| f.name.to_owned()).collect(),
        forest: Forest {
            base_score: -4.0,
            trees,
        },
        training: Training::none(at, "bench: random full trees"),
        validation: super::metrics::quality(&[]),
        importances: vec![],
        reference: Reference {
            features: (0..columns)
                .map(|c| Bins::fit(&column_values(c), 10))
                .collect(),
            score: Bins::fit(&[0.01, 0.05, 0.2, 0.5], 10),
        },
    }
}
