//! What every handler shares: the settings, the ingest, the quarantine,
//! the alert and label commands and the live peer book, behind one `Arc`.

use crate::commands::alerts::AlertCommands;
use crate::commands::labels::Labels;
use crate::configuration::Settings;
use crate::ingest::Ingest;
use crate::ingest::quarantine::Quarantine;
use crate::peers::{Follower, LivePeers};
use crate::policy::publisher::DriftPublisher;
use chrono::Duration;
use domain::ingest::ParseContext;
use domain::money::Currency;
use std::sync::Arc;

/// Everything a handler needs.
pub struct App {
    pub settings: Settings,
    pub ingest: Ingest,
    pub quarantine: Quarantine,
    pub default_currency: Currency,
    /// Acknowledge and resolve (they share what is known of raised alerts).
    pub alerts: AlertCommands,
    /// Labels, resolved to their transactions.
    pub labels: Labels,
    /// The merchant and category counts and the transaction directory,
    /// folded from the log (tests compare them with a replay).
    pub peers: Arc<LivePeers>,
    /// Keeps `peers` current; stops with the service.
    pub follower: Follower,
    /// Publishes the live model's drift gauges; stops with the service.
    pub drift: DriftPublisher,
}

pub type AppState = Arc<App>;

impl App {
    pub fn parse_context(&self) -> ParseContext {
        ParseContext {
            now: chrono::Utc::now(),
            max_future_skew: Duration::seconds(self.settings.max_future_skew_secs),
            default_currency: self.default_currency,
        }
    }
}
