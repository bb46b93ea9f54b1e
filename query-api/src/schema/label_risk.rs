//! Risk from labels: a merchant's (`Merchant.labelRisk`) or a merchant
//! category's (`categoryRisk`) transactions and known fraud over the
//! windows of `domain::peers::WINDOW_DAYS` (1, 7 and 30 whole UTC days
//! before the day of `at`), the figures the command side's features read.
//!
//! Read from `rm_merchants.merchant_days` / `category_days` with the
//! contract's query (`read_models::merchants::PEER_COUNTS_OF_*`) through the
//! request's loader, so a page of merchants asks once. Fraud is counted
//! from the labels in the log so far, each from where it arrived: the same
//! counts as the command side's `PeerBook` (issue 17).

use super::common::{db, loader, null_because, sql_failed};
use crate::error::{bad_input, not_found};
use crate::loaders::{PeerKey, PeerOf};
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use domain::peers::{PeerCounts, WINDOW_DAYS, day_of};
use domain::text::MerchantCategory;
use read_models::merchants::{CATEGORY_EXISTS, day_date};

/// Transactions and known fraud over the windows before a time.
#[derive(SimpleObject, Debug, Clone)]
pub struct LabelRisk {
    /// The time asked about: the windows end at the start of its UTC day.
    pub at: DateTime<Utc>,
    /// One per window, shortest first.
    pub windows: Vec<LabelWindow>,
}

/// One window of whole UTC days, `[from, to)`.
#[derive(SimpleObject, Debug, Clone)]
pub struct LabelWindow {
    pub days: i32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Transactions of those days.
    pub transaction_count: i64,
    /// Those whose newest label so far says fraud.
    pub known_fraud: i64,
    /// `knownFraud / transactionCount`; null without transactions.
    pub fraud_rate: Option<f64>,
}

impl LabelRisk {
    fn of(counts: &PeerCounts, at: DateTime<Utc>) -> LabelRisk {
        let to = day_date(day_of(at))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let windows = WINDOW_DAYS
            .iter()
            .enumerate()
            .map(|(w, days)| LabelWindow {
                days: *days,
                from: to - Duration::days(i64::from(*days)),
                to,
                transaction_count: i64::from(counts.transactions[w]),
                known_fraud: i64::from(counts.fraud[w]),
                fraud_rate: Some(counts.rate(w)).filter(|r| r.is_finite()),
            })
            .collect();
        LabelRisk { at, windows }
    }
}

/// The label risk of a merchant or category `id` as of `at` (default now).
pub(crate) async fn label_risk(
    ctx: &Context<'_>,
    of: PeerOf,
    id: &str,
    at: Option<DateTime<Utc>>,
) -> async_graphql::Result<LabelRisk> {
    let at = at.unwrap_or_else(Utc::now);
    let key = PeerKey {
        of,
        id: id.to_owned(),
        day: day_of(at),
    };
    let counts = loader(ctx)?
        .load_one(key)
        .await
        .map_err(sql_failed)?
        .unwrap_or_default();
    Ok(LabelRisk::of(&counts, at))
}

#[derive(Default)]
pub struct LabelRiskQuery;

#[Object]
impl LabelRiskQuery {
    /// A merchant category's transactions and known fraud over 1, 7 and 30
    /// whole UTC days before `at` (default: now). NOT_FOUND if no
    /// transaction names it; BAD_USER_INPUT if it is not a category name.
    async fn category_risk(
        &self,
        ctx: &Context<'_>,
        category: String,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Option<LabelRisk>> {
        let Ok(parsed) = MerchantCategory::parse(&category) else {
            return Err(bad_input(format!(
                "category {category:?} is not a merchant category name"
            )));
        };
        let exists: bool = sqlx::query_scalar(CATEGORY_EXISTS)
            .bind(parsed.as_str())
            .fetch_one(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        if !exists {
            return Ok(null_because(ctx, not_found("merchant category", &category)));
        }
        label_risk(ctx, PeerOf::Category, parsed.as_str(), at)
            .await
            .map(Some)
    }
}
