//! Recorded models (`models`): every gradient-boosted model `fraudctl model
//! train` (or the pipeline) recorded in the `model` stream (`ModelTrained`,
//! ADR 0016), with who trained it and when, its catalogue version, training
//! window, validation figures and top importances, whether this build can
//! score with it, and the policy versions that name it. Never the trees:
//! they are the model's bulk and say nothing to a reader.
//!
//! Read straight from the log per request, like the policy versions (the
//! stream grows by training runs only); whether a model loads is the
//! domain's `ModelBook`'s answer, so it has one definition.

use super::common::shared;
use super::policy::{PolicyVersion, book};
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::events::ModelTrained;
use domain::model::ModelBook;
use domain::model::metrics::Quality;

/// A count as GraphQL's 64-bit `Int`.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A figure that is not a number (e.g. ROC AUC without both classes) is
/// null: NaN would fail the whole answer.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The window and rows a model was trained on.
#[derive(SimpleObject)]
pub struct ModelTraining {
    /// Transactions with event times in `[from, to)` were used: those
    /// before `validationFrom` to fit, the rest to validate.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub validation_from: DateTime<Utc>,
    /// Labels as known up to this log position.
    pub labels_as_of: i64,
    pub rows: i64,
    pub fraud: i64,
    pub validation_rows: i64,
    pub validation_fraud: i64,
    /// The trainer and its settings.
    pub trainer: String,
}

/// Recall, precision and the threshold at a target false-positive rate.
#[derive(SimpleObject)]
pub struct AtFalsePositiveRate {
    pub target: f64,
    pub threshold: f64,
    pub recall: f64,
    pub precision: f64,
    /// The false-positive rate reached (at most the target).
    pub false_positive_rate: f64,
    pub flagged: i64,
}

/// A model's figures on its validation slice (its probability alone).
#[derive(SimpleObject)]
pub struct ModelValidation {
    pub transactions: i64,
    pub fraud: i64,
    /// Null without both classes.
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
    /// At 0.5 %, 1 % and 2 % false-positive rate.
    pub at_false_positive_rate: Vec<AtFalsePositiveRate>,
}

impl From<&Quality> for ModelValidation {
    fn from(q: &Quality) -> Self {
        ModelValidation {
            transactions: count(q.transactions),
            fraud: count(q.fraud),
            roc_auc: finite(q.roc_auc),
            average_precision: finite(q.average_precision),
            at_false_positive_rate: q
                .at_fpr
                .iter()
                // A point with a non-number has nothing to say.
                .filter(|a| {
                    [
                        a.target_fpr,
                        a.at.threshold,
                        a.at.recall,
                        a.at.precision,
                        a.at.fpr,
                    ]
                    .iter()
                    .all(|x| x.is_finite())
                })
                .map(|a| AtFalsePositiveRate {
                    target: a.target_fpr,
                    threshold: a.at.threshold,
                    recall: a.at.recall,
                    precision: a.at.precision,
                    false_positive_rate: a.at.fpr,
                    flagged: count(a.at.flagged),
                })
                .collect(),
        }
    }
}

/// A feature's share of the splits' total gain.
#[derive(SimpleObject)]
pub struct FeatureImportance {
    pub feature: String,
    pub gain: f64,
}

/// A recorded model, without its trees.
pub struct RecordedModel {
    position: u64,
    trained_at: DateTime<Utc>,
    trained: ModelTrained,
    /// Why this build cannot score with it, if it cannot.
    unusable: Option<String>,
}

#[Object(name = "Model")]
impl RecordedModel {
    /// The version policies name it by.
    async fn version(&self) -> &str {
        &self.trained.model.version
    }

    /// Its place in the log.
    async fn position(&self) -> i64 {
        count(self.position)
    }

    /// When the log recorded it.
    async fn trained_at(&self) -> DateTime<Utc> {
        self.trained_at
    }

    /// `fraudctl model train`, the pipeline, ...
    async fn trained_by(&self) -> &str {
        &self.trained.trained_by
    }

    /// The feature catalogue version its features were computed with.
    async fn catalogue_version(&self) -> i64 {
        i64::from(self.trained.model.catalogue_version)
    }

    /// The catalogue features it reads, by name.
    async fn features(&self) -> &[String] {
        &self.trained.model.features
    }

    /// How many trees its forest has (the trees themselves are not served).
    async fn trees(&self) -> i64 {
        count(self.trained.model.forest.trees.len() as u64)
    }

    async fn training(&self) -> ModelTraining {
        let t = &self.trained.model.training;
        ModelTraining {
            from: t.from,
            to: t.to,
            validation_from: t.validation_from,
            labels_as_of: count(t.labels_as_of),
            rows: count(t.rows),
            fraud: count(t.fraud),
            validation_rows: count(t.validation_rows),
            validation_fraud: count(t.validation_fraud),
            trainer: t.trainer.clone(),
        }
    }

    async fn validation(&self) -> ModelValidation {
        ModelValidation::from(&self.trained.model.validation)
    }

    /// The features with the largest share of the gain, largest first (at
    /// most `first`).
    async fn importances(&self, #[graphql(default = 10)] first: i32) -> Vec<FeatureImportance> {
        let n = usize::try_from(first).unwrap_or(0);
        self.trained
            .model
            .importances
            .iter()
            .take(n)
            .map(|i| FeatureImportance {
                feature: i.feature.clone(),
                gain: i.gain,
            })
            .collect()
    }

    /// Whether this build can score with it (its catalogue version and
    /// features are this build's).
    async fn usable(&self) -> bool {
        self.unusable.is_none()
    }

    /// Why not, when it cannot.
    async fn unusable_reason(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// The policy versions that name it, in publishing order (with whether
    /// each is live or the shadow).
    async fn used_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PolicyVersion>> {
        let book = book(ctx).await?;
        Ok(book
            .versions()
            .iter()
            .filter(|r| r.policy.model.as_deref() == Some(self.trained.model.version.as_str()))
            .map(|r| PolicyVersion::of(&book, r))
            .collect())
    }
}

#[derive(Default)]
pub struct ModelQuery;

#[Object]
impl ModelQuery {
    /// Every recorded model, newest first, read from the `model` stream.
    async fn models(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RecordedModel>> {
        let store = &*shared(ctx)?.store;
        let events =
            super::events::read_stream_up_to(store, domain::streams::MODEL, usize::MAX).await?;
        let mut loaded = ModelBook::default();
        let mut out = Vec::new();
        for e in events.iter().rev() {
            let decoded = match &e.upcast_error {
                Some(error) => Err(error.clone()),
                None => DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str())
                    .map_err(|error| error.to_string()),
            };
            let event = match decoded {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(
                        position = e.position.0,
                        %error,
                        "a recorded model could not be read; the list leaves it out"
                    );
                    continue;
                }
            };
            loaded.apply(&event);
            let DomainEvent::ModelTrained(trained) = event else {
                continue;
            };
            let unusable = loaded
                .get(&trained.model.version)
                .err()
                .map(|e| e.to_string());
            out.push(RecordedModel {
                position: e.position.0,
                trained_at: e.recorded_time,
                trained,
                unusable,
            });
        }
        Ok(out)
    }
}
