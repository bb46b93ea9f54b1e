//! A simulated transaction, its wire JSON (the ingest's schema v2) and its
//! ground-truth row.

use super::world::City;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Which fraud it belongs to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudTag {
    pub scenario: &'static str,
    /// Numbers the episode: one fraud event, several transactions.
    pub episode: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimTx {
    /// Event time, milliseconds after the simulation's start.
    pub at_ms: i64,
    pub customer: u32,
    /// Order of generation within the customer (breaks ties in time).
    pub seq: u32,
    pub merchant: String,
    pub category: &'static str,
    pub amount: f64,
    pub currency: &'static str,
    pub kind: &'static str,
    pub payment: &'static str,
    pub city: &'static City,
    pub coordinates: (f64, f64),
    pub device: &'static str,
    pub ip: Option<[u8; 4]>,
    pub agent: Option<&'static str>,
    pub fraud: Option<FraudTag>,
}

#[derive(Serialize)]
struct Wire<'a> {
    transaction_id: &'a str,
    timestamp: String,
    user_id: String,
    merchant_id: &'a str,
    amount: f64,
    currency: &'a str,
    transaction_type: &'a str,
    payment_method: &'a str,
    merchant_category: &'a str,
    location: WireLocation<'a>,
    device_info: WireDevice<'a>,
}

#[derive(Serialize)]
struct WireLocation<'a> {
    city: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    country: &'a str,
    coordinates: [f64; 2],
}

#[derive(Serialize)]
struct WireDevice<'a> {
    device_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

/// One line of the ground-truth file.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TruthRow {
    pub transaction_id: String,
    pub customer_id: String,
    pub is_fraud: bool,
    /// Empty for legitimate transactions.
    pub scenario: String,
    /// Empty for legitimate transactions.
    pub episode: String,
    pub event_time: DateTime<Utc>,
    pub amount: f64,
}

impl SimTx {
    /// The JSON body the ingest takes, stamped `timestamp`.
    pub fn write_json(
        &self,
        id: &str,
        timestamp: DateTime<Utc>,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let wire = Wire {
            transaction_id: id,
            timestamp: timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
            user_id: super::population::customer_id(self.customer),
            merchant_id: &self.merchant,
            amount: self.amount,
            currency: self.currency,
            transaction_type: self.kind,
            payment_method: self.payment,
            merchant_category: self.category,
            location: WireLocation {
                city: self.city.name,
                state: self.city.state,
                country: self.city.country,
                coordinates: [self.coordinates.0, self.coordinates.1],
            },
            device_info: WireDevice {
                device_type: self.device,
                ip_address: self
                    .ip
                    .map(|ip| format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])),
                user_agent: self.agent,
            },
        };
        serde_json::to_writer(out, &wire)
    }

    pub fn truth(&self, id: &str, event_time: DateTime<Utc>) -> TruthRow {
        TruthRow {
            transaction_id: id.to_owned(),
            customer_id: super::population::customer_id(self.customer),
            is_fraud: self.fraud.is_some(),
            scenario: self
                .fraud
                .as_ref()
                .map_or(String::new(), |f| f.scenario.to_owned()),
            episode: self
                .fraud
                .as_ref()
                .map_or(String::new(), |f| format!("ep-{:06}", f.episode)),
            event_time,
            amount: self.amount,
        }
    }
}
