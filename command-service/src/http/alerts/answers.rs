//! What the alert routes answer: the acknowledgement or resolution as
//! recorded, with its event time (the one stored, for a repeat).

use chrono::{DateTime, Utc};
use domain::events::{AlertAcknowledged, AlertResolved, Verdict};
use domain::ids::AlertId;
use domain::outcome::Stamped;
use domain::text::{Analyst, Note};
use serde::Serialize;

/// An acknowledgement as answered: what was recorded, and when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AcknowledgementAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub alert_id: AlertId,
    #[schema(value_type = String)]
    pub analyst: Analyst,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Note>,
    pub acknowledged_at: DateTime<Utc>,
}

impl AcknowledgementAnswer {
    pub fn of(acknowledged: AlertAcknowledged, acknowledged_at: DateTime<Utc>) -> Self {
        AcknowledgementAnswer {
            alert_id: acknowledged.alert_id,
            analyst: acknowledged.analyst,
            note: acknowledged.note,
            acknowledged_at,
        }
    }
}

impl From<Stamped<AlertAcknowledged>> for AcknowledgementAnswer {
    fn from(stored: Stamped<AlertAcknowledged>) -> Self {
        AcknowledgementAnswer::of(stored.event, stored.at)
    }
}

/// A resolution as answered: what was recorded, and when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResolutionAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub alert_id: AlertId,
    /// `confirmed_fraud` or `false_positive`.
    #[schema(value_type = String)]
    pub verdict: Verdict,
    #[schema(value_type = String)]
    pub analyst: Analyst,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Note>,
    pub resolved_at: DateTime<Utc>,
}

impl ResolutionAnswer {
    pub fn of(resolved: AlertResolved, resolved_at: DateTime<Utc>) -> Self {
        ResolutionAnswer {
            alert_id: resolved.alert_id,
            verdict: resolved.verdict,
            analyst: resolved.analyst,
            note: resolved.note,
            resolved_at,
        }
    }
}

impl From<Stamped<AlertResolved>> for ResolutionAnswer {
    fn from(stored: Stamped<AlertResolved>) -> Self {
        ResolutionAnswer::of(stored.event, stored.at)
    }
}
