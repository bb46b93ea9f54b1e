//! Drift of the live model, counted on the ingest's hot path and published
//! as Prometheus gauges by a background task.
//!
//! Each decision scored by the live model counts its model columns' values
//! and its score into the bins training recorded (`domain::model::drift`):
//! one relaxed atomic increment per column, no lock, nothing allocated. The
//! window rolls in two halves of `size / 2` observations: the half being
//! filled and the one before it, so the PSI is always over the last
//! `size / 2` to `size` scored transactions. Entering a new half zeroes the
//! oldest one; an increment racing that zeroing (another request counting
//! at the very same moment) may be lost, which a PSI over thousands of
//! values does not notice, and is the price of not locking the hot path.
//! Only the live model is counted: a shadow's model acts on nothing, and
//! its scores are in the events (`ShadowOutcome.model`) for a comparison.
//!
//! Every `PUBLISH_EVERY` the task (`super::publisher`) publishes, for the live model,
//! `sentinel_model_feature_psi{model,feature}` and
//! `sentinel_model_score_psi{model}` (NaN until `MIN_OBSERVED` values are
//! in the window), and `sentinel_model_drift_window{model}` (values counted). When
//! the live model changes, the old model's gauges are set to NaN so alert
//! rules stop firing for a model that no longer decides.

use domain::features::Features;
use domain::model::LoadedModel;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Scored transactions the PSI is computed over (at most; at least half).
pub const WINDOW: u64 = 10_000;
/// Fewer values than this in the window: no PSI published (too noisy).
pub const MIN_OBSERVED: u64 = 500;
/// How often the gauges are brought up to date.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(10);

/// The rolling bin counts of one model.
pub struct DriftWindow {
    model: Arc<LoadedModel>,
    /// Where each quantity's bins start in a half: the model's columns in
    /// order, then the score.
    offsets: Vec<usize>,
    halves: [Box<[AtomicU32]>; 2],
    seen: AtomicU64,
    half: u64,
}

/// What a window says now.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftFigures {
    /// Values in the window.
    pub observed: u64,
    /// Per model column, by feature name.
    pub features: Vec<(String, Option<f64>)>,
    pub score: Option<f64>,
}

impl DriftWindow {
    /// A window over the last `size` scored transactions (`size` >= 2).
    pub fn new(model: Arc<LoadedModel>, size: u64) -> DriftWindow {
        let reference = &model.model.reference;
        let mut offsets = Vec::with_capacity(reference.features.len() + 1);
        let mut total = 0;
        for bins in reference.features.iter().chain([&reference.score]) {
            offsets.push(total);
            total += bins.shares.len();
        }
        let zeroed = || (0..total).map(|_| AtomicU32::new(0)).collect();
        DriftWindow {
            model,
            offsets,
            halves: [zeroed(), zeroed()],
            seen: AtomicU64::new(0),
            half: (size / 2).max(1),
        }
    }

    pub fn version(&self) -> &str {
        self.model.version()
    }

    /// Counts one scored transaction: its model columns and its score.
    pub fn observe(&self, features: &Features, score: f64) {
        let n = self.seen.fetch_add(1, Relaxed);
        let slot = usize::from((n / self.half) % 2 == 1);
        let Some(counts) = self.halves.get(slot) else {
            return;
        };
        if n > 0 && n.is_multiple_of(self.half) {
            // The first one into a new half clears what it held two
            // halves ago.
            for c in counts.iter() {
                c.store(0, Relaxed);
            }
        }
        let reference = &self.model.model.reference;
        let row = self.model.row(features);
        for ((bins, &offset), &value) in reference.features.iter().zip(&self.offsets).zip(&row) {
            if let Some(c) = counts.get(offset + bins.bin(value)) {
                c.fetch_add(1, Relaxed);
            }
        }
        if let Some(&offset) = self.offsets.last()
            && let Some(c) = counts.get(offset + reference.score.bin(score))
        {
            c.fetch_add(1, Relaxed);
        }
    }

    /// The PSI of each column and of the score over the window.
    pub fn figures(&self) -> DriftFigures {
        let reference = &self.model.model.reference;
        let quantities = reference.features.iter().chain([&reference.score]);
        let mut psi = Vec::with_capacity(self.offsets.len());
        let mut observed = 0;
        for (bins, &offset) in quantities.zip(&self.offsets) {
            let counts: Vec<u64> = (offset..offset + bins.shares.len())
                .map(|i| {
                    self.halves
                        .iter()
                        .map(|h| h.get(i).map_or(0, |c| u64::from(c.load(Relaxed))))
                        .sum()
                })
                .collect();
            observed = counts.iter().sum();
            psi.push(bins.psi(&counts));
        }
        let score = psi.pop().flatten();
        DriftFigures {
            observed,
            features: self.model.model.features.iter().cloned().zip(psi).collect(),
            score,
        }
    }

    /// Sets the gauges from [`DriftWindow::figures`].
    pub fn publish(&self) {
        let figures = self.figures();
        let model = self.version().to_owned();
        metrics::gauge!("sentinel_model_drift_window", "model" => model.clone())
            .set(figures.observed as f64);
        // Too few values: NaN (no alert rule fires on it), not a noisy PSI.
        let enough = figures.observed >= MIN_OBSERVED;
        let psi = |v: Option<f64>| v.filter(|_| enough).unwrap_or(f64::NAN);
        for (feature, value) in figures.features {
            metrics::gauge!("sentinel_model_feature_psi", "model" => model.clone(), "feature" => feature)
                .set(psi(value));
        }
        metrics::gauge!("sentinel_model_score_psi", "model" => model).set(psi(figures.score));
    }

    /// Sets this model's gauges to NaN: it no longer decides.
    pub fn retire(&self) {
        let model = self.version().to_owned();
        for feature in &self.model.model.features {
            metrics::gauge!("sentinel_model_feature_psi", "model" => model.clone(), "feature" => feature.clone())
                .set(f64::NAN);
        }
        metrics::gauge!("sentinel_model_score_psi", "model" => model.clone()).set(f64::NAN);
        metrics::gauge!("sentinel_model_drift_window", "model" => model).set(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::features::F;
    use domain::model::drift::{Bins, Reference};
    use domain::model::{Forest, Model, Node, Training, Tree};

    fn model() -> Arc<LoadedModel> {
        let at = chrono::Utc::now();
        let train: Vec<f64> = (0..1000).map(f64::from).collect();
        let model = Model {
            version: "m-drift".into(),
            catalogue_version: domain::features::VERSION,
            features: vec!["amount".into()],
            forest: Forest {
                base_score: 0.0,
                trees: vec![Tree {
                    nodes: vec![Node::leaf(0.0)],
                }],
            },
            training: Training::none(at, "hand-made"),
            validation: domain::model::metrics::quality(&[]),
            importances: vec![],
            reference: Reference {
                features: vec![Bins::fit(&train, 10)],
                score: Bins::fit(&[0.1, 0.2, 0.3, 0.4], 4),
            },
        };
        Arc::new(model.load().expect("loads"))
    }

    fn amount(value: f64) -> Features {
        let mut f = Features::default();
        f.set(F::Amount, value);
        f
    }

    #[test]
    fn the_same_distribution_is_stable_a_shift_is_not_and_the_window_rolls() {
        let w = DriftWindow::new(model(), 2000);
        for v in 0..1000 {
            w.observe(&amount(f64::from(v)), 0.25);
        }
        let same = w.figures();
        assert_eq!(same.observed, 1000);
        let psi = same.features[0].1.expect("psi");
        assert!(psi < 0.01, "{psi}");
        assert_eq!(same.features[0].0, "amount");
        // Shifted values push the old ones out of the window: after two
        // halves nothing of the training-like values is left.
        for v in 0..2000 {
            w.observe(&amount(f64::from(5000 + v)), 0.25);
        }
        let shifted = w.figures();
        assert!(shifted.observed <= 2000, "{}", shifted.observed);
        let psi = shifted.features[0].1.expect("psi");
        assert!(psi > 0.25, "{psi}");
    }
}
