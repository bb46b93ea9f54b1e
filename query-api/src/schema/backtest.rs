//! Recorded backtests (`backtests`): what a draft policy would have decided
//! on the recorded traffic beside a baseline, as `fraudctl backtest
//! --record` kept it (`BacktestRecorded` in the `backtest` stream, ADR
//! 0020): the window, the counts, and both sides' figures against the
//! labels. Read straight from the log, like the policy versions: the
//! stream grows by people's actions only, so it is read whole per request.

use super::common::{list_cost, page_size, shared};
use super::policy::DecisionChange;
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::events::{BacktestFigures, BacktestRecorded};
use std::cmp::Reverse;

/// A count as GraphQL's 64-bit `Int`.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One side's figures against the labels: "flagged" is what the backtest
/// counted as flagged (`Backtest.flag`); a rate is null when its
/// denominator is zero.
#[derive(SimpleObject)]
pub struct BacktestSide {
    pub flagged: i64,
    pub true_positives: i64,
    pub false_positives: i64,
    pub recall: Option<f64>,
    pub false_positive_rate: Option<f64>,
    pub precision: Option<f64>,
    /// Flagged / labelled.
    pub alert_rate: Option<f64>,
}

impl From<&BacktestFigures> for BacktestSide {
    fn from(f: &BacktestFigures) -> Self {
        // A rate that is not a number would fail the whole answer.
        let rate = |x: Option<f64>| x.filter(|x| x.is_finite());
        BacktestSide {
            flagged: count(f.flagged),
            true_positives: count(f.true_positives),
            false_positives: count(f.false_positives),
            recall: rate(f.recall),
            false_positive_rate: rate(f.false_positive_rate),
            precision: rate(f.precision),
            alert_rate: rate(f.alert_rate),
        }
    }
}

/// A recorded backtest: a summary, never the transactions themselves.
pub struct Backtest {
    position: u64,
    recorded_at: DateTime<Utc>,
    event: BacktestRecorded,
}

#[Object]
impl Backtest {
    /// Its place in the log.
    async fn position(&self) -> i64 {
        count(self.position)
    }

    /// When it was recorded.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.recorded_at
    }

    /// Who ran it (`fraudctl backtest --by`).
    async fn recorded_by(&self) -> &str {
        &self.event.recorded_by
    }

    /// The draft policy's version (published or not).
    async fn candidate_version(&self) -> &str {
        &self.event.candidate_version
    }

    /// The fixed baseline's version; null: each transaction's baseline was
    /// the version that decided it.
    async fn baseline_version(&self) -> Option<&str> {
        self.event.baseline_version.as_deref()
    }

    /// The event-time window compared, `[from, to)`; an end is open when
    /// null.
    async fn from(&self) -> Option<DateTime<Utc>> {
        self.event.from
    }

    async fn to(&self) -> Option<DateTime<Utc>> {
        self.event.to
    }

    /// What counted as flagged: `alert`, `review` or `decline`.
    async fn flag(&self) -> &str {
        &self.event.flag
    }

    /// Log events read, and the position of the newest it used.
    async fn events_read(&self) -> i64 {
        count(self.event.events_read)
    }

    async fn as_of_position(&self) -> i64 {
        count(self.event.as_of_position)
    }

    /// Transactions in the window, decided by both sides.
    async fn compared(&self) -> i64 {
        count(self.event.compared)
    }

    /// Recorded decisions the baseline replay did not reproduce (0 when
    /// the backtest is exact).
    async fn mismatches(&self) -> i64 {
        count(self.event.mismatches)
    }

    /// Compared transactions the sides decided differently (decision,
    /// score, alert or rules).
    async fn differing(&self) -> i64 {
        count(self.event.differing)
    }

    /// `old -> new` decisions and how many, most frequent first.
    async fn decisions(&self) -> Vec<DecisionChange> {
        let mut out: Vec<DecisionChange> = self
            .event
            .decisions
            .iter()
            .map(|(change, n)| DecisionChange {
                change: change.clone(),
                count: count(*n),
            })
            .collect();
        out.sort_by_key(|c| Reverse(c.count));
        out
    }

    async fn alerts_old(&self) -> i64 {
        count(self.event.alerts_old)
    }

    async fn alerts_new(&self) -> i64 {
        count(self.event.alerts_new)
    }

    /// Compared transactions with a label.
    async fn labelled(&self) -> i64 {
        count(self.event.labelled)
    }

    /// The baseline's figures against the labels; null without labels.
    async fn baseline(&self) -> Option<BacktestSide> {
        self.event.old_figures.as_ref().map(BacktestSide::from)
    }

    /// The candidate's figures against the labels; null without labels.
    async fn candidate(&self) -> Option<BacktestSide> {
        self.event.new_figures.as_ref().map(BacktestSide::from)
    }
}

#[derive(Default)]
pub struct BacktestQuery;

#[Object]
impl BacktestQuery {
    /// Recorded backtests, newest first, at most `first` (of
    /// `candidateVersion` only, when given). `BAD_INPUT` past the page
    /// limit.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn backtests(
        &self,
        ctx: &Context<'_>,
        candidate_version: Option<String>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<Backtest>> {
        let first = page_size(ctx, first)?;
        let store = &*shared(ctx)?.store;
        let events =
            super::events::read_stream_up_to(store, domain::streams::BACKTEST, usize::MAX).await?;
        let mut out = Vec::new();
        for e in events.iter().rev() {
            if out.len() >= first {
                break;
            }
            let decoded = match &e.upcast_error {
                Some(error) => Err(error.clone()),
                None => DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str())
                    .map_err(|error| error.to_string()),
            };
            let event = match decoded {
                Ok(DomainEvent::BacktestRecorded(b)) => b,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(
                        position = e.position.0,
                        %error,
                        "a recorded backtest could not be read; the list leaves it out"
                    );
                    continue;
                }
            };
            if candidate_version
                .as_deref()
                .is_some_and(|v| v != event.candidate_version)
            {
                continue;
            }
            out.push(Backtest {
                position: e.position.0,
                recorded_at: e.recorded_time,
                event,
            });
        }
        Ok(out)
    }
}
