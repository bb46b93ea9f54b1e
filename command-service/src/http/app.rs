//! What every handler shares: the settings, the ingest, the quarantine
//! and the alert commands, behind one `Arc`.

use crate::commands::alerts::AlertCommands;
use crate::configuration::Settings;
use crate::ingest::Ingest;
use crate::ingest::quarantine::Quarantine;
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
