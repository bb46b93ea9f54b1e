//! The demo's live terminal summary: one line every few seconds, read from
//! the read models (what a dashboard would show): transactions per second,
//! decisions by type, alerts by priority, quarantined inputs, projection lag.

use sqlx::PgPool;

/// What one summary line says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub transactions: i64,
    pub per_second: f64,
    pub approve: i64,
    pub review: i64,
    pub decline: i64,
    pub alerts: [i64; 4],
    pub quarantined: i64,
    pub lag_events: i64,
    pub lag_seconds: f64,
}

impl Summary {
    /// Reads the figures; a read model that does not exist yet counts as empty.
    pub async fn read(pool: &PgPool) -> anyhow::Result<Summary> {
        let mut s = Summary::default();
        if let Ok(rows) = sqlx::query_as::<_, (String, i64)>(
            "SELECT decision, count(*) FROM rm_transactions.transactions GROUP BY 1",
        )
        .fetch_all(pool)
        .await
        {
            for (decision, n) in rows {
                match decision.as_str() {
                    "approve" => s.approve = n,
                    "review" => s.review = n,
                    _ => s.decline += n,
                }
            }
        }
        s.transactions = s.approve + s.review + s.decline;
        if let Ok(recent) = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM rm_transactions.transactions \
             WHERE recorded_time > now() - interval '10 seconds'",
        )
        .fetch_one(pool)
        .await
        {
            s.per_second = recent as f64 / 10.0;
        }
        if let Ok(rows) = sqlx::query_as::<_, (String, i64)>(
            "SELECT priority, count(*) FROM rm_alerts.alerts GROUP BY 1",
        )
        .fetch_all(pool)
        .await
        {
            for (priority, n) in rows {
                let i = match priority.as_str() {
                    "P0" => 0,
                    "P1" => 1,
                    "P2" => 2,
                    _ => 3,
                };
                s.alerts[i] += n;
            }
        }
        if let Ok(n) = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT sum(quarantined)::bigint FROM rm_data_quality.data_quality",
        )
        .fetch_one(pool)
        .await
        {
            s.quarantined = n.unwrap_or(0);
        }
        let (lag_events, lag_seconds): (Option<i64>, Option<f64>) = sqlx::query_as(
            "SELECT max(lag_events), max(lag_seconds) FROM projection_status WHERE role = 'live'",
        )
        .fetch_one(pool)
        .await?;
        s.lag_events = lag_events.unwrap_or(0);
        s.lag_seconds = lag_seconds.unwrap_or(0.0);
        Ok(s)
    }

    pub fn line(&self) -> String {
        format!(
            "{:>7.1} tx/s  {:>8} transactions  approve {} / review {} / decline {}  alerts P0 {} P1 {} P2 {} P3 {}  quarantined {}  projection lag {} events ({:.1}s)",
            self.per_second,
            self.transactions,
            self.approve,
            self.review,
            self.decline,
            self.alerts[0],
            self.alerts[1],
            self.alerts[2],
            self.alerts[3],
            self.quarantined,
            self.lag_events,
            self.lag_seconds
        )
    }
}
