//! Training: the log's examples (`crate::dataset`) split in time (fit on
//! the older part, validate on the newest slice, never at random), the
//! legitimate fit rows downsampled with weights when there are many,
//! gradient-boosted trees fitted by forust with early stopping on the
//! validation slice, converted into our `Forest` (ADR 0016), and the
//! `Model` artifact filled: training window, validation figures, gain
//! importances, drift reference.

use super::convert;
use crate::dataset::{self, Labels, Range};
use chrono::{DateTime, Duration, Utc};
use domain::features::{CATALOGUE, COUNT, Features};
use domain::model::drift::{Bins, Reference};
use domain::model::metrics::{self, Quality};
use domain::model::{Importance, Model, Training};
use domain::scoring::{self, Decision};
use forust_ml::GradientBooster;
use forust_ml::Matrix;
use forust_ml::gradientbooster::ImportanceMethod;
use forust_ml::metric::Metric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt;

/// What unlabelled transactions count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unlabelled {
    /// Legitimate: most traffic is never labelled, and fraud is what gets
    /// reported (chargebacks, analysts).
    Legit,
    /// Left out of fitting and validation.
    Skip,
}

/// The trainer's settings. The defaults are general-purpose values for
/// boosted trees on tabular data, not tuned to any simulated world.
#[derive(Debug, Clone)]
pub struct Settings {
    pub range: Range,
    /// The validation slice: the newest `validation_days` of the window, or
    /// its newest quarter if that is shorter.
    pub validation_days: f64,
    pub unlabelled: Unlabelled,
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Stop when the validation log loss has not improved for this many
    /// trees.
    pub early_stopping_rounds: usize,
    /// Above this many legitimate fit rows, they are sampled down to it
    /// (every fraud row is kept) and weighted by the inverse of the rate.
    pub max_legit_rows: usize,
    pub seed: u64,
    /// Refuse with fewer fraud rows than these (fit, validation).
    pub min_fraud: (u64, u64),
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            range: Range::default(),
            validation_days: 7.0,
            unlabelled: Unlabelled::Legit,
            iterations: 300,
            learning_rate: 0.1,
            max_depth: 6,
            early_stopping_rounds: 20,
            max_legit_rows: 250_000,
            seed: 0x05e4_71e1,
            min_fraud: (20, 5),
        }
    }
}

/// The examples of a window, in log order.
#[derive(Debug, Default)]
pub struct Table {
    pub features: Vec<Features>,
    pub timestamps: Vec<DateTime<Utc>>,
    /// `None`: unlabelled.
    pub labels: Vec<Option<bool>>,
    /// The rules' share of the recorded risk (`scoring::risk_score` of the
    /// recorded hits): what a new model is combined with.
    pub rules_scores: Vec<f64>,
    pub decisions: Vec<Decision>,
    pub labels_as_of: u64,
}

impl Table {
    /// Reads the window from the log (two scans, progress bars).
    pub async fn read(pool: &sqlx::PgPool, range: Range) -> anyhow::Result<Table> {
        let labels: Labels = dataset::labels(pool).await?;
        let mut t = Table {
            labels_as_of: labels.as_of,
            ..Table::default()
        };
        dataset::examples(pool, &labels, range, |e| {
            t.features.push(e.row.features);
            t.timestamps.push(e.row.timestamp);
            t.labels.push(e.label);
            t.rules_scores.push(scoring::risk_score(e.rules_fired));
            t.decisions.push(e.decision);
            Ok(())
        })
        .await?;
        Ok(t)
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// The target of row `i` under `unlabelled`, `None` when left out.
    pub fn target(&self, i: usize, unlabelled: Unlabelled) -> Option<bool> {
        match (self.labels[i], unlabelled) {
            (Some(l), _) => Some(l),
            (None, Unlabelled::Legit) => Some(false),
            (None, Unlabelled::Skip) => None,
        }
    }
}

/// Too few fraud labels to fit or to validate: the pipeline's exit code 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEnoughLabels {
    pub fit_fraud: u64,
    pub validation_fraud: u64,
    pub need: (u64, u64),
}

impl fmt::Display for NotEnoughLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not enough labels: {} fraud labels before the validation slice and {} in it; training needs at least {} and {} (label more fraud, widen --from/--to, or change --validation-days)",
            self.fit_fraud, self.validation_fraud, self.need.0, self.need.1
        )
    }
}

impl std::error::Error for NotEnoughLabels {}

/// Which rows fit and which validate.
#[derive(Debug, Clone)]
pub struct Split {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub validation_from: DateTime<Utc>,
    /// Row indexes (into the table), in log order.
    pub fit: Vec<usize>,
    pub validation: Vec<usize>,
}

/// The newest `validation_days` (or the newest quarter of the span, if
/// shorter) validate; everything before fits.
pub fn split(table: &Table, settings: &Settings) -> Option<Split> {
    let kept: Vec<usize> = (0..table.len())
        .filter(|&i| table.target(i, settings.unlabelled).is_some())
        .collect();
    let first = kept.iter().map(|&i| table.timestamps[i]).min()?;
    let last = kept.iter().map(|&i| table.timestamps[i]).max()?;
    let quarter = (last - first) / 4;
    let days = Duration::milliseconds((settings.validation_days * 86_400_000.0) as i64);
    let validation_from = last - quarter.min(days);
    let (validation, fit): (Vec<usize>, Vec<usize>) = kept
        .into_iter()
        .partition(|&i| table.timestamps[i] >= validation_from);
    Some(Split {
        from: settings.range.from.unwrap_or(first),
        to: settings.range.to.unwrap_or(last + Duration::seconds(1)),
        validation_from,
        fit,
        validation,
    })
}

/// A trained model with what promotion needs of its validation slice.
pub struct Trained {
    pub model: Model,
    pub split: Split,
    /// The model's probability (as the command side rounds it) for each
    /// validation row, in `split.validation` order.
    pub validation_probabilities: Vec<f64>,
    /// Fit rows after downsampling, and the legitimate rows' sampling rate.
    pub fit_rows: usize,
    pub legit_rate: f64,
    /// The booster, for checks against our conversion.
    #[cfg_attr(not(test), allow(dead_code))]
    pub booster: GradientBooster,
    pub trees: usize,
}

/// Column-major values of `rows` (forust's layout).
fn columns(table: &Table, rows: &[usize]) -> Vec<f64> {
    let mut data = Vec::with_capacity(rows.len() * COUNT);
    for c in 0..COUNT {
        data.extend(rows.iter().map(|&i| table.features[i].values()[c]));
    }
    data
}

/// Fits the model on `table` as `version`.
pub fn train(table: &Table, settings: &Settings, version: &str) -> anyhow::Result<Trained> {
    let Some(split) = split(table, settings) else {
        return Err(NotEnoughLabels {
            fit_fraud: 0,
            validation_fraud: 0,
            need: settings.min_fraud,
        }
        .into());
    };
    let target = |i: usize| table.target(i, settings.unlabelled) == Some(true);
    let fit_fraud = split.fit.iter().filter(|&&i| target(i)).count() as u64;
    let validation_fraud = split.validation.iter().filter(|&&i| target(i)).count() as u64;
    if fit_fraud < settings.min_fraud.0 || validation_fraud < settings.min_fraud.1 {
        return Err(NotEnoughLabels {
            fit_fraud,
            validation_fraud,
            need: settings.min_fraud,
        }
        .into());
    }
    anyhow::ensure!(
        split.validation.len() as u64 > validation_fraud,
        "the validation slice has no legitimate transaction: widen the window"
    );

    // Every fraud row; legitimate rows sampled down (deterministically) when
    // there are many, weighted so the probabilities stay calibrated.
    let legit = split.fit.len() - fit_fraud as usize;
    let rate = if legit > settings.max_legit_rows {
        settings.max_legit_rows as f64 / legit as f64
    } else {
        1.0
    };
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let fit: Vec<usize> = split
        .fit
        .iter()
        .copied()
        .filter(|&i| target(i) || rate >= 1.0 || rng.random::<f64>() < rate)
        .collect();
    let y: Vec<f64> = fit
        .iter()
        .map(|&i| f64::from(u8::from(target(i))))
        .collect();
    let w: Vec<f64> = fit
        .iter()
        .map(|&i| if target(i) { 1.0 } else { 1.0 / rate })
        .collect();
    let fit_data = columns(table, &fit);
    let val_data = columns(table, &split.validation);
    let val_y: Vec<f64> = split
        .validation
        .iter()
        .map(|&i| f64::from(u8::from(target(i))))
        .collect();
    let val_w = vec![1.0; split.validation.len()];

    let mut booster = GradientBooster::default()
        .set_iterations(settings.iterations)
        .set_learning_rate(settings.learning_rate)
        .set_max_depth(settings.max_depth)
        .set_missing(f64::NAN)
        .set_seed(settings.seed)
        .set_evaluation_metric(Some(Metric::LogLoss))
        .set_early_stopping_rounds(Some(settings.early_stopping_rounds));
    let fit_matrix = Matrix::new(&fit_data, fit.len(), COUNT);
    let val_matrix = Matrix::new(&val_data, split.validation.len(), COUNT);
    booster
        .fit(
            &fit_matrix,
            &y,
            &w,
            Some(vec![(val_matrix, &val_y[..], &val_w[..])]),
        )
        .map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
    let forest = convert::forest(&booster)?;
    let trees = forest.trees.len();

    // Gain share per feature, largest first.
    let gains = booster.calculate_feature_importance(ImportanceMethod::TotalGain, true);
    let mut importances: Vec<Importance> = gains
        .iter()
        .filter(|(_, g)| g.is_finite() && **g > 0.0)
        .map(|(&c, &g)| Importance {
            feature: CATALOGUE[c].name.to_owned(),
            gain: (f64::from(g) * 1e6).round() / 1e6,
        })
        .collect();
    importances.sort_by(|a, b| b.gain.total_cmp(&a.gain).then(a.feature.cmp(&b.feature)));

    // Drift reference: each column over every fit row (not the sample: live
    // traffic is not downsampled).
    let feature_bins = (0..COUNT)
        .map(|c| {
            let values: Vec<f64> = split
                .fit
                .iter()
                .map(|&i| table.features[i].values()[c])
                .collect();
            Bins::fit(&values, 10)
        })
        .collect();
    let model = Model {
        version: version.to_owned(),
        catalogue_version: domain::features::VERSION,
        features: CATALOGUE.iter().map(|f| f.name.to_owned()).collect(),
        forest,
        training: Training {
            from: split.from,
            to: split.to,
            validation_from: split.validation_from,
            labels_as_of: table.labels_as_of,
            rows: split.fit.len() as u64,
            fraud: fit_fraud,
            validation_rows: split.validation.len() as u64,
            validation_fraud,
            trainer: format!(
                "forust-ml 0.8.0 logloss trees={trees}/{} eta={} depth={} early_stop={} legit_rate={:.4} unlabelled={:?}",
                settings.iterations,
                settings.learning_rate,
                settings.max_depth,
                settings.early_stopping_rounds,
                rate,
                settings.unlabelled
            ),
        },
        validation: Quality {
            transactions: 0,
            fraud: 0,
            roc_auc: f64::NAN,
            average_precision: f64::NAN,
            at_fpr: Vec::new(),
        },
        importances,
        reference: Reference {
            features: feature_bins,
            score: Bins::fit(&[], 10),
        },
    };
    // Scored exactly as the command side will: the loaded artifact, the
    // probability rounded to 6 decimals.
    let mut loaded = model.clone().load()?;
    let validation_probabilities: Vec<f64> = split
        .validation
        .iter()
        .map(|&i| (loaded.probability(&table.features[i]) * 1e6).round() / 1e6)
        .collect();
    let scored: Vec<metrics::Scored> = validation_probabilities
        .iter()
        .zip(&split.validation)
        .map(|(&p, &i)| (p, target(i)))
        .collect();
    loaded.model.validation = metrics::quality(&scored);
    loaded.model.reference.score = Bins::fit(&validation_probabilities, 10);
    Ok(Trained {
        model: loaded.model,
        split,
        validation_probabilities,
        fit_rows: fit.len(),
        legit_rate: rate,
        booster,
        trees,
    })
}
