//! How CSV columns become the ingest's JSON: a mapping from Sentinel's field
//! names to the file's column names (from `--mapping FILE.toml` and
//! `--column field=COLUMN` flags; a field left unmapped uses a column of its
//! own name when there is one), constants for fields the file lacks, and how
//! times are written (epoch seconds or milliseconds, or RFC 3339).
//!
//! A row whose place cells (city, country, latitude) are all empty is sent
//! without a `location`: the ingest accepts that from a card-not-present
//! transaction (device_type web or mobile, not a withdrawal) and refuses it,
//! naming `location`, from any other. A partly filled place is sent as it
//! is, so the ingest names what is missing rather than this tool guessing.
//!
//! ```toml
//! time_format = "auto"          # auto | rfc3339 | epoch_seconds | epoch_millis
//! label_source = "chargebacks"  # the source recorded with each label
//! [columns]
//! transaction_id = "txn_ref"
//! customer_id = "card_holder"
//! timestamp = "ts"
//! amount = "amt"
//! label = "is_fraud"
//! [constants]
//! currency = "USD"
//! ```

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Every field a column can fill.
pub const FIELDS: &[&str] = &[
    "transaction_id",
    "customer_id",
    "timestamp",
    "amount",
    "currency",
    "merchant_id",
    "merchant_category",
    "transaction_type",
    "payment_method",
    "city",
    "state",
    "country",
    "latitude",
    "longitude",
    "device_type",
    "ip_address",
    "user_agent",
    "label",
];

/// Column names tried, in order, for a field left unmapped.
fn aliases(field: &str) -> &'static [&'static str] {
    match field {
        "customer_id" => &["customer_id", "user_id"],
        "transaction_id" => &["transaction_id"],
        "timestamp" => &["timestamp"],
        "label" => &["label", "is_fraud"],
        _ => &[],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Numbers are epoch seconds (or milliseconds when over 1e11), text is RFC 3339.
    Auto,
    Rfc3339,
    EpochSeconds,
    EpochMillis,
}

/// The TOML file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    pub time_format: Option<TimeFormat>,
    pub label_source: Option<String>,
    pub delimiter: Option<char>,
}

impl MappingFile {
    pub fn read(path: &Path) -> anyhow::Result<MappingFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not a valid mapping", path.display()))
    }

    /// Adds `field=value` pairs from flags (they win over the file).
    pub fn override_with(
        &mut self,
        columns: &[String],
        constants: &[String],
    ) -> anyhow::Result<()> {
        for (flags, into) in [
            (columns, &mut self.columns),
            (constants, &mut self.constants),
        ] {
            for pair in flags {
                let (field, value) = pair
                    .split_once('=')
                    .with_context(|| format!("{pair:?} is not field=value"))?;
                into.insert(field.trim().to_owned(), value.to_owned());
            }
        }
        Ok(())
    }
}

/// A mapping resolved against a file's header: field -> column index.
#[derive(Debug)]
pub struct Mapping {
    columns: BTreeMap<&'static str, usize>,
    constants: BTreeMap<&'static str, String>,
    pub time_format: TimeFormat,
}

fn known(field: &str) -> anyhow::Result<&'static str> {
    FIELDS
        .iter()
        .find(|f| **f == field)
        .copied()
        .with_context(|| format!("unknown field {field:?}; fields are {}", FIELDS.join(", ")))
}

impl Mapping {
    pub fn resolve(file: &MappingFile, header: &csv::StringRecord) -> anyhow::Result<Mapping> {
        let find = |name: &str| header.iter().position(|h| h.trim() == name);
        let mut columns = BTreeMap::new();
        for (field, column) in &file.columns {
            let field = known(field)?;
            let index = find(column)
                .with_context(|| format!("column {column:?} (for {field}) is not in the header"))?;
            columns.insert(field, index);
        }
        let mut constants = BTreeMap::new();
        for (field, value) in &file.constants {
            constants.insert(known(field)?, value.clone());
        }
        for field in FIELDS {
            if columns.contains_key(field) || constants.contains_key(field) {
                continue;
            }
            let names = std::iter::once(*field).chain(aliases(field).iter().copied());
            if let Some(index) = names.filter_map(find).next() {
                columns.insert(field, index);
            }
        }
        for needed in ["transaction_id", "customer_id", "timestamp", "amount"] {
            anyhow::ensure!(
                columns.contains_key(needed) || constants.contains_key(needed),
                "no column for {needed}: map one with --column {needed}=COLUMN"
            );
        }
        Ok(Mapping {
            columns,
            constants,
            time_format: file.time_format.unwrap_or(TimeFormat::Auto),
        })
    }

    /// A field's value in `row`: the mapped cell (trimmed, empty = absent)
    /// or the constant.
    fn get<'a>(&'a self, row: &'a csv::StringRecord, field: &str) -> Option<&'a str> {
        match self.columns.get(field) {
            Some(i) => row.get(*i).map(str::trim).filter(|s| !s.is_empty()),
            None => self.constants.get(field).map(String::as_str),
        }
    }

    /// One row as the ingest's JSON, its event time and its label (if any).
    pub fn row(&self, row: &csv::StringRecord) -> anyhow::Result<Prepared> {
        let get = |f: &str| self.get(row, f);
        let text = |f: &str| get(f).map(|s| Value::String(s.to_owned()));
        let raw_time = get("timestamp").context("no timestamp")?;
        let at = parse_time(raw_time, self.time_format)?;
        let mut body = Map::new();
        body.insert(
            "transaction_id".into(),
            text("transaction_id").context("no transaction_id")?,
        );
        body.insert(
            "user_id".into(),
            text("customer_id").context("no customer_id")?,
        );
        body.insert(
            "timestamp".into(),
            Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        );
        // Amounts go as text: the ingest reads decimal text exactly.
        body.insert("amount".into(), text("amount").context("no amount")?);
        for f in [
            "currency",
            "merchant_id",
            "merchant_category",
            "transaction_type",
            "payment_method",
        ] {
            if let Some(v) = text(f) {
                body.insert(f.into(), v);
            }
        }
        if get("city").is_some() || get("country").is_some() || get("latitude").is_some() {
            let mut location = Map::new();
            for f in ["city", "state", "country"] {
                if let Some(v) = text(f) {
                    location.insert(f.into(), v);
                }
            }
            if let (Some(lat), Some(lon)) = (get("latitude"), get("longitude")) {
                let number = |s: &str, what: &str| {
                    s.parse::<f64>()
                        .with_context(|| format!("{what} {s:?} is not a number"))
                };
                location.insert(
                    "coordinates".into(),
                    json!([number(lat, "latitude")?, number(lon, "longitude")?]),
                );
            }
            body.insert("location".into(), Value::Object(location));
        }
        if get("device_type").is_some() {
            let mut device = Map::new();
            for f in ["device_type", "ip_address", "user_agent"] {
                if let Some(v) = text(f) {
                    device.insert(f.into(), v);
                }
            }
            body.insert("device_info".into(), Value::Object(device));
        }
        let label = get("label").map(parse_label).transpose()?;
        Ok(Prepared {
            at,
            body: Value::Object(body),
            label,
        })
    }
}

/// A row ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub at: DateTime<Utc>,
    pub body: Value,
    pub label: Option<bool>,
}

impl Prepared {
    pub fn transaction_id(&self) -> &str {
        self.body["transaction_id"].as_str().unwrap_or_default()
    }
}

pub fn parse_label(text: &str) -> anyhow::Result<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "fraud" => Ok(true),
        "0" | "false" | "f" | "no" | "n" | "legit" | "legitimate" | "genuine" => Ok(false),
        other => {
            anyhow::bail!("label {other:?} is neither fraud (1/true/yes) nor not (0/false/no)")
        }
    }
}

/// Epoch seconds or milliseconds, or RFC 3339 (a space for the `T` and no
/// zone, read as UTC, are accepted too).
pub fn parse_time(text: &str, format: TimeFormat) -> anyhow::Result<DateTime<Utc>> {
    let epoch = |millis: bool| -> anyhow::Result<DateTime<Utc>> {
        let x: f64 = text
            .parse()
            .with_context(|| format!("time {text:?} is not an epoch number"))?;
        let ms = if millis { x } else { x * 1000.0 };
        anyhow::ensure!(ms.is_finite(), "time {text:?} is out of range");
        Utc.timestamp_millis_opt(ms.round() as i64)
            .single()
            .with_context(|| format!("time {text:?} is out of range"))
    };
    let rfc3339 = || -> anyhow::Result<DateTime<Utc>> {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(t.with_timezone(&Utc));
        }
        for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(text, f) {
                return Ok(t.and_utc());
            }
        }
        anyhow::bail!("time {text:?} is not RFC 3339 (like 2024-01-15T14:30:00Z)")
    };
    match format {
        TimeFormat::EpochSeconds => epoch(false),
        TimeFormat::EpochMillis => epoch(true),
        TimeFormat::Rfc3339 => rfc3339(),
        TimeFormat::Auto => match text.parse::<f64>() {
            Ok(x) => epoch(x.abs() >= 1e11),
            Err(_) => rfc3339(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_format() {
        let want = Utc.with_ymd_and_hms(2024, 1, 15, 14, 30, 0).unwrap();
        for (text, format) in [
            ("1705329000", TimeFormat::Auto),
            ("1705329000000", TimeFormat::Auto),
            ("1705329000", TimeFormat::EpochSeconds),
            ("1705329000000", TimeFormat::EpochMillis),
            ("2024-01-15T14:30:00Z", TimeFormat::Auto),
            ("2024-01-15T15:30:00+01:00", TimeFormat::Rfc3339),
            ("2024-01-15 14:30:00", TimeFormat::Auto),
        ] {
            assert_eq!(parse_time(text, format).unwrap(), want, "{text}");
        }
        assert!(parse_time("yesterday", TimeFormat::Auto).is_err());
        assert!(parse_time("2024-01-15T14:30:00Z", TimeFormat::EpochSeconds).is_err());
    }

    #[test]
    fn a_mapped_row_becomes_ingest_json() {
        let header = csv::StringRecord::from(vec!["ref", "who", "when", "amt", "fraud?", "city"]);
        let mut file = MappingFile::default();
        file.override_with(
            &[
                "transaction_id=ref".into(),
                "customer_id=who".into(),
                "timestamp=when".into(),
                "amount=amt".into(),
                "label=fraud?".into(),
            ],
            &["currency=EUR".into()],
        )
        .unwrap();
        let m = Mapping::resolve(&file, &header).unwrap();
        let row = csv::StringRecord::from(vec!["t1", "c1", "1705329000", "12.50", "yes", ""]);
        let p = m.row(&row).unwrap();
        assert_eq!(p.label, Some(true));
        assert_eq!(p.body["transaction_id"], "t1");
        assert_eq!(p.body["user_id"], "c1");
        assert_eq!(p.body["amount"], "12.50");
        assert_eq!(p.body["currency"], "EUR");
        assert_eq!(p.body["timestamp"], "2024-01-15T14:30:00Z");
        assert!(p.body.get("location").is_none(), "an empty city is absent");
    }

    #[test]
    fn a_row_without_a_place_is_sent_without_one_and_only_web_or_mobile_pass() {
        use domain::ingest::{ParseContext, parse_transaction};
        let header = csv::StringRecord::from(vec![
            "transaction_id",
            "customer_id",
            "timestamp",
            "amount",
            "currency",
            "merchant_id",
            "merchant_category",
            "transaction_type",
            "payment_method",
            "city",
            "country",
            "latitude",
            "longitude",
            "device_type",
        ]);
        let m = Mapping::resolve(&MappingFile::default(), &header).unwrap();
        let ctx = ParseContext {
            now: Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap(),
            max_future_skew: chrono::Duration::minutes(5),
            default_currency: domain::money::Currency::parse("EUR").unwrap(),
        };
        let row = |device: &str| {
            let cells = [
                "t1",
                "c1",
                "1705329000",
                "12.50",
                "USD",
                "m1",
                "books",
                "purchase",
                "debit_card",
                "",
                "",
                "",
                "",
                device,
            ];
            m.row(&csv::StringRecord::from(cells.to_vec())).unwrap()
        };
        for device in ["web", "mobile"] {
            let p = row(device);
            assert!(p.body.get("location").is_none(), "{}", p.body);
            let tx = parse_transaction(&p.body, &ctx).unwrap();
            assert!(tx.location.is_none());
        }
        let errors = parse_transaction(&row("pos").body, &ctx).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["location"]);
    }

    #[test]
    fn unknown_fields_and_missing_columns_are_refused() {
        let header = csv::StringRecord::from(vec!["transaction_id", "customer_id", "amount"]);
        let mut file = MappingFile::default();
        let err = Mapping::resolve(&file, &header).unwrap_err().to_string();
        assert!(err.contains("timestamp"), "{err}");
        file.override_with(&["colour=amount".into()], &[]).unwrap();
        assert!(Mapping::resolve(&file, &header).is_err());
    }
}
