//! Models: gradient-boosted trees trained from the log (`fraudctl model
//! train`, ADR 0016), recorded whole in the `model` stream
//! (`ModelTrained`), and put live only through a policy version that names
//! them (`Ruleset::model`). Pure: the artifact, its checks, scoring and
//! explanation, the ranking figures and drift bins; no training here.
//!
//! - [`Model`]: the artifact as recorded (trees, the catalogue features it
//!   reads by name, training window, validation figures, drift reference);
//! - [`LoadedModel`]: a checked artifact with its columns resolved against
//!   today's catalogue, what the command side scores with;
//! - [`Scorer`]: the loaded model a policy carries at run time (not part of
//!   the policy's recorded value: the policy names the model by version);
//! - [`ModelBook`]: the fold of the `model` stream;
//! - [`metrics`], [`drift`]: figures shared by training, promotion,
//!   calibration, the pipeline and the evaluation.
//!
//! How the model's probability and the rules combine is
//! `crate::scoring::combine`.

pub mod book;
pub mod drift;
pub mod forest;
pub mod metrics;
pub mod synthetic;

pub use book::ModelBook;
pub use forest::{Forest, ForestError, Node, Tree};

use crate::features::{CATALOGUE, COUNT, Features};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// How many features an alert freezes.
pub const TOP_FEATURES: usize = 5;

/// The window and rows a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Training {
    /// Transactions with event times in `[from, to)` were used: those
    /// before `validation_from` to fit, the rest to validate.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub validation_from: DateTime<Utc>,
    /// Labels as known up to this log position (the last event read).
    pub labels_as_of: u64,
    pub rows: u64,
    pub fraud: u64,
    pub validation_rows: u64,
    pub validation_fraud: u64,
    /// The trainer and its settings, for the record.
    pub trainer: String,
}

impl Training {
    /// The record of a model built by hand or for a benchmark, with no
    /// rows behind it: an empty window at `at`, `trainer` saying how.
    pub fn none(at: DateTime<Utc>, trainer: &str) -> Training {
        Training {
            from: at,
            to: at,
            validation_from: at,
            labels_as_of: 0,
            rows: 0,
            fraud: 0,
            validation_rows: 0,
            validation_fraud: 0,
            trainer: trainer.to_owned(),
        }
    }
}

/// A feature's share of the splits' total gain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    pub feature: String,
    pub gain: f64,
}

/// A trained model as the log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub version: String,
    /// The catalogue version its features were computed with.
    pub catalogue_version: u32,
    /// The catalogue features it reads, by name: the forest's columns.
    pub features: Vec<String>,
    pub forest: Forest,
    pub training: Training,
    /// Its figures on the validation slice (probability alone).
    pub validation: metrics::Quality,
    /// Sorted, largest first.
    pub importances: Vec<Importance>,
    pub reference: drift::Reference,
}

/// Why a recorded model cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("model {model}: feature `{feature}` is not in the catalogue")]
    UnknownFeature { model: String, feature: String },
    #[error("model {model} was trained on catalogue version {trained}, this build has {current}")]
    Catalogue {
        model: String,
        trained: u32,
        current: u32,
    },
    #[error("model {model}: {source}")]
    Forest { model: String, source: ForestError },
    #[error("model {model}: {what}")]
    Shape { model: String, what: String },
}

/// One feature's part in a score: its value and how much it moved the
/// log-odds (positive: towards fraud).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    /// `None` when unknown.
    pub value: Option<f64>,
    pub contribution: f64,
}

/// A checked model, columns resolved to catalogue indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedModel {
    pub model: Model,
    columns: Vec<usize>,
}

impl Model {
    /// Checks the artifact against this build's catalogue.
    pub fn load(self) -> Result<LoadedModel, ModelError> {
        let model = self.version.clone();
        if self.catalogue_version != crate::features::VERSION {
            return Err(ModelError::Catalogue {
                model,
                trained: self.catalogue_version,
                current: crate::features::VERSION,
            });
        }
        if self.features.len() > COUNT || self.reference.features.len() != self.features.len() {
            return Err(ModelError::Shape {
                model,
                what: format!(
                    "{} features with {} drift references",
                    self.features.len(),
                    self.reference.features.len()
                ),
            });
        }
        let columns = self
            .features
            .iter()
            .map(|name| {
                CATALOGUE
                    .iter()
                    .position(|f| f.name == name)
                    .ok_or_else(|| ModelError::UnknownFeature {
                        model: model.clone(),
                        feature: name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.forest
            .check(columns.len())
            .map_err(|source| ModelError::Forest { model, source })?;
        Ok(LoadedModel {
            model: self,
            columns,
        })
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl LoadedModel {
    pub fn version(&self) -> &str {
        &self.model.version
    }

    /// The model's columns for one transaction.
    pub fn row(&self, features: &Features) -> [f64; COUNT] {
        let mut row = [f64::NAN; COUNT];
        let values = features.values();
        for (slot, &c) in row.iter_mut().zip(&self.columns) {
            *slot = values[c];
        }
        row
    }

    /// The probability of fraud and what each column contributed to it,
    /// in one walk of the forest (the decision needs the probability, an
    /// alert the contributions: walking twice doubled an alert's cost).
    pub fn score(&self, features: &Features) -> Scored {
        let row = self.row(features);
        let n = self.columns.len();
        let mut contributions = [0.0; COUNT];
        let bias = self
            .model
            .forest
            .contributions(&row[..n], &mut contributions[..n]);
        let raw = bias + contributions[..n].iter().sum::<f64>();
        Scored {
            probability: sigmoid(raw),
            row,
            contributions,
        }
    }

    /// The probability of fraud, in [0, 1].
    pub fn probability(&self, features: &Features) -> f64 {
        self.score(features).probability
    }

    /// The `k` features that pushed the score up the most, largest first,
    /// with their values.
    pub fn explain(&self, features: &Features, k: usize) -> Vec<Contribution> {
        self.score(features).top(self, k)
    }

    /// Which catalogue feature each column reads.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }
}

/// One transaction scored by a model: the probability, and the per-column
/// values and contributions an explanation is made of.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub probability: f64,
    row: [f64; COUNT],
    contributions: [f64; COUNT],
}

impl Scored {
    /// The `k` columns that pushed the score up the most, largest first.
    pub fn top(&self, model: &LoadedModel, k: usize) -> Vec<Contribution> {
        let n = model.columns.len();
        let mut order: Vec<usize> = (0..n).filter(|&j| self.contributions[j] > 0.0).collect();
        order.sort_by(|&a, &b| self.contributions[b].total_cmp(&self.contributions[a]));
        order
            .into_iter()
            .take(k)
            .map(|j| Contribution {
                feature: model.model.features[j].clone(),
                value: Some(self.row[j]).filter(|v| v.is_finite()),
                contribution: (self.contributions[j] * 10_000.0).round() / 10_000.0,
            })
            .collect()
    }
}

/// The loaded model a policy scores with at run time. Not part of the
/// policy's value: two policies naming the same model are equal whether or
/// not it is loaded, and it is never serialised (the policy names the model,
/// the `model` stream holds it).
#[derive(Clone, Default)]
pub struct Scorer(pub Option<Arc<LoadedModel>>);

impl Scorer {
    pub fn get(&self) -> Option<&LoadedModel> {
        self.0.as_deref()
    }
}

impl PartialEq for Scorer {
    fn eq(&self, _: &Scorer) -> bool {
        true
    }
}

impl fmt::Debug for Scorer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(m) => write!(f, "Scorer({})", m.version()),
            None => f.write_str("Scorer(none)"),
        }
    }
}
