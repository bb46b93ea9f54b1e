//! The policy (ADR 0015): every version with who published and promoted it
//! and when (`policies`, `policy`), which is live and which shadows
//! (`policyStatus`), what changed between two versions (`policyDiff`), and
//! how the shadow's decisions compare with live's against the labels
//! (`shadowComparison`).
//!
//! Versions and their lifecycle are read straight from the log, like the
//! audit trails: the `ruleset` stream (rulesets published before policies)
//! and the `policy` stream, folded by the domain's `PolicyBook`, once per
//! request. The comparison reads the transactions read model (the shadow's
//! outcome is a column of every transaction it decided), grouped in SQL and
//! folded by the domain's `Comparison`, so its figures have one definition.

use super::common::{Decision, Priority, db, null_because, shared, sql_failed};
use crate::error::{OrInternal, bad_input, internal, not_found};
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::policy::book::{PolicyBook, Promotion, VersionRecord};
use domain::policy::compare::Side;
use domain::ruleset::Ruleset;
use event_store::{EventStore, RecordedEvent};
use read_models::transactions::{SHADOW_GROUPS, ShadowGroup, shadow_comparison};
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The request's policy book, folded once however many fields ask for it
/// (each request gets a fresh one, so it is never stale).
#[derive(Default)]
pub struct PolicyMemo(OnceCell<Arc<PolicyBook>>);

/// The policy streams folded: from the request's memo, or from the log when
/// the request has none (a subscription's).
pub(crate) async fn book(ctx: &Context<'_>) -> async_graphql::Result<Arc<PolicyBook>> {
    let store = &*shared(ctx)?.store;
    match ctx.data_opt::<PolicyMemo>() {
        Some(memo) => memo
            .0
            .get_or_try_init(|| async { read_book(store).await.map(Arc::new) })
            .await
            .cloned(),
        None => read_book(store).await.map(Arc::new),
    }
}

/// Folds the `ruleset` and `policy` streams, merged in log order (legacy
/// rulesets came first, but the fold must not depend on it).
pub(crate) async fn read_book(store: &dyn EventStore) -> async_graphql::Result<PolicyBook> {
    let mut events = whole(store, domain::streams::RULESET).await?;
    events.extend(whole(store, domain::streams::POLICY).await?);
    events.sort_by_key(|e| e.position);
    let mut book = PolicyBook::default();
    for e in &events {
        // An event the projectors would dead-letter is left out here too,
        // and said so in the log.
        let decoded = match &e.upcast_error {
            Some(error) => Err(error.clone()),
            None => DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str())
                .map_err(|error| error.to_string()),
        };
        match decoded {
            Ok(event) => book.apply(&event, e.recorded_time),
            Err(error) => tracing::warn!(
                position = e.position.0,
                %error,
                "a policy event could not be read; the policy history leaves it out"
            ),
        }
    }
    Ok(book)
}

/// Every event of a stream. The policy streams grow by people's actions
/// only, so they are read whole (no cap that would silently drop versions).
async fn whole(store: &dyn EventStore, stream: &str) -> async_graphql::Result<Vec<RecordedEvent>> {
    super::events::read_stream_up_to(store, stream, usize::MAX).await
}

/// One policy version as the log tells it.
pub struct PolicyVersion {
    record: VersionRecord,
    live: bool,
    shadow: bool,
}

impl PolicyVersion {
    pub(crate) fn of(book: &PolicyBook, record: &VersionRecord) -> PolicyVersion {
        let is = |r: Option<&VersionRecord>| r.is_some_and(|r| r.version() == record.version());
        PolicyVersion {
            record: record.clone(),
            live: is(book.live()),
            shadow: is(book.shadow()),
        }
    }

    fn policy(&self) -> &Ruleset {
        &self.record.policy
    }
}

#[Object]
impl PolicyVersion {
    /// The version string every decision it makes records.
    async fn version(&self) -> &str {
        self.record.version()
    }

    /// The model it scores with (a version in the `model` stream), if any.
    async fn model_version(&self) -> Option<&str> {
        self.policy().model.as_deref()
    }

    /// The admin who published it, or `configuration` when the service
    /// published it from its policy file (and for every ruleset published
    /// before policies).
    async fn published_by(&self) -> &str {
        &self.record.published_by
    }

    /// When the log recorded its publication.
    async fn published_at(&self) -> DateTime<Utc> {
        self.record.published_at
    }

    /// It decides every transaction now.
    async fn live(&self) -> bool {
        self.live
    }

    /// It is the shadow: it decides every transaction too, recorded, with
    /// no effect.
    async fn shadow(&self) -> bool {
        self.shadow
    }

    /// Every time it became live, oldest first: by a promotion, or by a
    /// rollback to it.
    async fn promotions(&self) -> Vec<PolicyPromotion> {
        self.record
            .promotions
            .iter()
            .map(PolicyPromotion::from)
            .collect()
    }

    /// Its rules written as CEL expressions, in file order.
    async fn expression_rules(&self) -> Vec<ExpressionRule> {
        self.policy()
            .expression_rules
            .iter()
            .map(|r| ExpressionRule {
                name: r.rule.name.clone(),
                expression: r.rule.expression.clone(),
                weight: r.rule.weight,
                description: r.rule.description.clone(),
                enabled: r.rule.enabled,
            })
            .collect()
    }

    /// Scores at or above these are reviewed or declined.
    async fn decision_thresholds(&self) -> DecisionThresholds {
        let d = &self.policy().decision;
        DecisionThresholds {
            review: d.review,
            decline: d.decline,
        }
    }

    /// Scores at or above these raise an alert of that priority.
    async fn priority_thresholds(&self) -> PriorityThresholds {
        let p = &self.policy().priority;
        PriorityThresholds {
            p0: p.p0,
            p1: p.p1,
            p2: p.p2,
            p3: p.p3,
        }
    }

    /// The whole policy as a policy file (TOML), which `fraudctl policy
    /// publish` reads back equal.
    async fn toml(&self) -> async_graphql::Result<String> {
        domain::policy::to_toml(self.policy()).map_err(|e| internal("writing the policy file", &e))
    }
}

/// A time a version became live.
#[derive(SimpleObject)]
pub struct PolicyPromotion {
    /// Who promoted it (or rolled back to it).
    pub by: String,
    pub at: DateTime<Utc>,
    /// True when a rollback made it live again.
    pub rollback: bool,
}

impl From<&Promotion> for PolicyPromotion {
    fn from(p: &Promotion) -> Self {
        PolicyPromotion {
            by: p.by.clone(),
            at: p.at,
            rollback: p.rollback,
        }
    }
}

/// A rule written as a CEL expression over `tx.*` and `f.*`.
#[derive(SimpleObject)]
pub struct ExpressionRule {
    /// Its name, as its hits show it (`RuleHit.rule`) and alerts filter by.
    pub name: String,
    pub expression: String,
    /// What it adds to the risk score when it holds, in [0, 1].
    pub weight: f64,
    pub description: Option<String>,
    pub enabled: bool,
}

/// Scores at or above these get the decision.
#[derive(SimpleObject)]
pub struct DecisionThresholds {
    pub review: f64,
    pub decline: f64,
}

/// Scores at or above these raise an alert of that priority; below `p3`,
/// none.
#[derive(SimpleObject)]
pub struct PriorityThresholds {
    pub p0: f64,
    pub p1: f64,
    pub p2: f64,
    pub p3: f64,
}

/// Where the policy stands.
#[derive(SimpleObject)]
pub struct PolicyStatus {
    /// The version deciding now.
    pub live_version: Option<String>,
    /// The version shadowing it, if one is set.
    pub shadow_version: Option<String>,
    /// The model the live version scores with, if any.
    pub model_version: Option<String>,
    /// The version a rollback would make live again.
    pub rollback_to: Option<String>,
}

/// One value that differs between two versions.
#[derive(SimpleObject)]
pub struct PolicyChange {
    /// Its place in the policy file, e.g. `rules.velocity_count.weight`, or
    /// `expression_rules.{name}` for an expression rule (compared by name).
    pub path: String,
    /// In the first version, as JSON; null when absent there.
    pub from: Option<String>,
    /// In the second version, as JSON; null when absent there.
    pub to: Option<String>,
}

/// A kind of changed decision, e.g. `approve -> review`, and how many.
#[derive(SimpleObject)]
pub struct DecisionChange {
    pub change: String,
    pub count: i64,
}

/// A live version and how many of the compared transactions it decided.
#[derive(SimpleObject)]
pub struct VersionCount {
    pub version: String,
    pub transactions: i64,
}

/// One side of a comparison. "Flagged" means an alert was raised (or would
/// have been); the label-scored figures count the labelled transactions
/// only, by their latest label.
#[derive(SimpleObject)]
pub struct ComparedSide {
    /// The shadow's version; for live, the version that decided every
    /// compared transaction, or null when several did (see `liveVersions`).
    pub version: Option<String>,
    pub alerts: i64,
    pub reviews: i64,
    pub declines: i64,
    /// Flagged and labelled fraud.
    pub true_positives: i64,
    /// Flagged and labelled legitimate.
    pub false_positives: i64,
    /// Not flagged and labelled fraud.
    pub false_negatives: i64,
    /// Not flagged and labelled legitimate.
    pub true_negatives: i64,
    /// Flagged fraud / labelled fraud; null without labelled fraud.
    pub recall: Option<f64>,
    /// Flagged legitimate / labelled legitimate; null without any.
    pub false_positive_rate: Option<f64>,
    /// Fraud among the flagged labelled ones; null when none was flagged.
    pub precision: Option<f64>,
}

impl ComparedSide {
    fn of(version: Option<String>, side: &Side) -> ComparedSide {
        ComparedSide {
            version,
            alerts: count_of(side.alerts),
            reviews: count_of(side.reviews),
            declines: count_of(side.declines),
            true_positives: count_of(side.true_positives),
            false_positives: count_of(side.false_positives),
            false_negatives: count_of(side.false_negatives),
            true_negatives: count_of(side.true_negatives),
            recall: side.recall(),
            false_positive_rate: side.false_positive_rate(),
            precision: side.precision(),
        }
    }
}

/// Live against the shadow over the transactions the shadow decided.
#[derive(SimpleObject)]
pub struct ShadowComparison {
    pub shadow_version: String,
    /// The range of event time compared (either end open when null).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Transactions the shadow decided in the range.
    pub transactions: i64,
    /// Those with a label (fraud or not).
    pub labelled: i64,
    /// Those whose decision would change.
    pub changed_decisions: i64,
    /// How decisions would change, most frequent first.
    pub changes: Vec<DecisionChange>,
    /// Alerts the shadow would raise that live did not.
    pub alerts_added: i64,
    /// Alerts live raised that the shadow would not.
    pub alerts_removed: i64,
    /// The live versions that decided them, most transactions first.
    pub live_versions: Vec<VersionCount>,
    pub live: ComparedSide,
    pub shadow: ComparedSide,
}

impl ShadowComparison {
    /// The grouped rows folded by the domain's `Comparison`.
    fn of(
        version: String,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        groups: &[ShadowGroup],
    ) -> async_graphql::Result<ShadowComparison> {
        let c = shadow_comparison(groups).or_internal("comparing live and shadow")?;
        let mut by_live: BTreeMap<&str, i64> = BTreeMap::new();
        for g in groups {
            *by_live.entry(&g.live_version).or_default() += g.transactions;
        }
        let mut live_versions: Vec<VersionCount> = by_live
            .into_iter()
            .map(|(version, transactions)| VersionCount {
                version: version.to_owned(),
                transactions,
            })
            .collect();
        // Stable: equal counts stay in version order.
        live_versions.sort_by_key(|v| Reverse(v.transactions));
        let only_live = match live_versions.as_slice() {
            [one] => Some(one.version.clone()),
            _ => None,
        };
        let mut changes: Vec<DecisionChange> = c
            .changes
            .iter()
            .map(|(change, count)| DecisionChange {
                change: change.clone(),
                count: count_of(*count),
            })
            .collect();
        changes.sort_by_key(|c| Reverse(c.count));
        Ok(ShadowComparison {
            from,
            to,
            transactions: count_of(c.transactions),
            labelled: count_of(c.labelled),
            changed_decisions: count_of(c.changed_decisions),
            changes,
            alerts_added: count_of(c.alerts_added),
            alerts_removed: count_of(c.alerts_removed),
            live_versions,
            live: ComparedSide::of(only_live, &c.live),
            shadow: ComparedSide::of(Some(version.clone()), &c.shadow),
            shadow_version: version,
        })
    }
}

/// A count as GraphQL's 64-bit `Int`.
fn count_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A transaction's shadow outcome: what the shadow policy would have
/// decided (recorded, never acted on).
#[derive(SimpleObject)]
pub struct ShadowOutcome {
    pub version: String,
    pub decision: Decision,
    pub risk_score: f64,
    /// The priority of the alert it would have raised; null: none.
    pub priority: Option<Priority>,
}

#[derive(Default)]
pub struct PolicyQuery;

#[Object]
impl PolicyQuery {
    /// Every policy version, in publishing order, read from the log.
    async fn policies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PolicyVersion>> {
        let book = book(ctx).await?;
        Ok(book
            .versions()
            .iter()
            .map(|r| PolicyVersion::of(&book, r))
            .collect())
    }

    /// One policy version; without `version`, the live one (null when none
    /// is live yet). A version that names nothing is null with `NOT_FOUND`.
    async fn policy(
        &self,
        ctx: &Context<'_>,
        version: Option<String>,
    ) -> async_graphql::Result<Option<PolicyVersion>> {
        let book = book(ctx).await?;
        Ok(match version {
            None => book.live().map(|r| PolicyVersion::of(&book, r)),
            Some(v) => match book.version(&v) {
                Some(r) => Some(PolicyVersion::of(&book, r)),
                None => null_because(ctx, not_found("policy version", &v)),
            },
        })
    }

    /// The live and shadow versions, the live model and the rollback
    /// target.
    async fn policy_status(&self, ctx: &Context<'_>) -> async_graphql::Result<PolicyStatus> {
        let book = book(ctx).await?;
        let version = |r: Option<&VersionRecord>| r.map(|r| r.version().to_owned());
        Ok(PolicyStatus {
            live_version: version(book.live()),
            shadow_version: version(book.shadow()),
            model_version: book.live().and_then(|r| r.policy.model.clone()),
            rollback_to: version(book.rollback_target()),
        })
    }

    /// What differs from version `from` to version `to`: every changed
    /// value by its path in the policy file, and the expression rules
    /// added, removed or changed. Null with `NOT_FOUND` when either names
    /// nothing (the rest of the answer stands).
    async fn policy_diff(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
    ) -> async_graphql::Result<Option<Vec<PolicyChange>>> {
        let book = book(ctx).await?;
        let (a, b) = match (book.version(&from), book.version(&to)) {
            (Some(a), Some(b)) => (&a.policy, &b.policy),
            (None, _) => return Ok(null_because(ctx, not_found("policy version", &from))),
            (_, None) => return Ok(null_because(ctx, not_found("policy version", &to))),
        };
        Ok(Some(
            domain::policy::diff::diff(a, b)
                .into_iter()
                .map(|c| PolicyChange {
                    path: c.path,
                    from: c.from,
                    to: c.to,
                })
                .collect(),
        ))
    }

    /// Live against a shadow version (the current shadow when not given)
    /// over the transactions it decided, by event time in `[from, to)`:
    /// decisions that would change, alerts added and removed, and each
    /// side's recall, false-positive rate and precision against the
    /// labels. Null when no version is given and none shadows;
    /// `NOT_FOUND` for a version that names nothing. Reads the
    /// transactions read model: one grouped statement.
    async fn shadow_comparison(
        &self,
        ctx: &Context<'_>,
        shadow_version: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Option<ShadowComparison>> {
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(bad_input("from must be before to"));
        }
        let book = book(ctx).await?;
        let version = match shadow_version {
            Some(v) if book.version(&v).is_some() => v,
            Some(v) => return Ok(null_because(ctx, not_found("policy version", &v))),
            None => match book.shadow() {
                Some(r) => r.version().to_owned(),
                None => return Ok(None),
            },
        };
        let groups: Vec<ShadowGroup> = sqlx::query_as(SHADOW_GROUPS)
            .bind(&version)
            .bind(from)
            .bind(to)
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        ShadowComparison::of(version, from, to, &groups).map(Some)
    }
}
