//! Test helpers: transaction builders and the given/when/then scenario.
//!
//! `given(history(..)).when(tx).then_fires(rule)` runs the real `decide`
//! against a state folded from the given events with the real `evolve`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::events::{DomainEvent, TransactionRecorded};
use domain::geo::{Coordinates, CountryCode};
use domain::ids::{AlertId, CustomerId, MerchantId, TransactionId};
use domain::money::{Amount, Currency};
use domain::rules::{RuleHit, RuleId};
use domain::text::{MerchantCategory, PlaceName, UserAgent};
use domain::transaction::{
    DeviceInfo, DeviceType, InputSchema, Location, PaymentMethod, TransactionType,
};
use domain::{
    CustomerState, Decided, Decision, DecisionIds, RecordTransaction, Ruleset, Transaction, decide,
    evolve,
};
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// A Monday at 00:00 UTC; every test time is relative to it.
pub fn day0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 0, 0, 0).unwrap()
}

/// `h:m:s` on day 0.
pub fn at(h: i64, m: i64, s: i64) -> DateTime<Utc> {
    day0() + Duration::hours(h) + Duration::minutes(m) + Duration::seconds(s)
}

pub const LONDON: (&str, &str, f64, f64) = ("London", "GB", 51.5074, -0.1278);
pub const PARIS: (&str, &str, f64, f64) = ("Paris", "FR", 48.8566, 2.3522);
pub const BERLIN: (&str, &str, f64, f64) = ("Berlin", "DE", 52.5200, 13.4050);
pub const NEW_YORK: (&str, &str, f64, f64) = ("New York", "US", 40.7128, -74.0060);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Builds a v2 transaction; defaults: customer `c-1`, a 20.00 USD grocery
/// purchase on a mobile phone in London at 10:00.
pub struct TxBuilder(Transaction);

pub fn tx() -> TxBuilder {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    TxBuilder(Transaction {
        transaction_id: TransactionId::parse(&format!("tx-{n}")).unwrap(),
        customer_id: CustomerId::parse("c-1").unwrap(),
        timestamp: at(10, 0, 0),
        amount: Amount::parse(20.0).unwrap(),
        currency: Some(Currency::parse("USD").unwrap()),
        merchant_id: Some(MerchantId::parse("m-1").unwrap()),
        merchant_category: Some(MerchantCategory::parse("grocery").unwrap()),
        transaction_type: Some(TransactionType::Purchase),
        payment_method: Some(PaymentMethod::CreditCard),
        location: Some(place(LONDON)),
        device_info: Some(DeviceInfo::new(DeviceType::Mobile, None, None)),
        input_schema: InputSchema::V2,
    })
}

fn place((city, country, lat, lon): (&str, &str, f64, f64)) -> Location {
    Location {
        city: PlaceName::parse(city).unwrap(),
        state: None,
        country: CountryCode::parse(country).unwrap(),
        coordinates: Coordinates::new(lat, lon).unwrap(),
    }
}

impl TxBuilder {
    /// No merchant (as transactions recorded before merchants were captured).
    pub fn without_merchant(mut self) -> Self {
        self.0.merchant_id = None;
        self
    }

    pub fn at(mut self, when: DateTime<Utc>) -> Self {
        self.0.timestamp = when;
        self
    }

    pub fn amount(mut self, major: f64) -> Self {
        self.0.amount = Amount::parse(major).unwrap();
        self
    }

    pub fn in_city(mut self, city: (&str, &str, f64, f64)) -> Self {
        self.0.location = Some(place(city));
        self
    }

    /// Without a place, as a web or mobile (card-not-present) transaction
    /// may be sent: the default device is a phone.
    pub fn nowhere(mut self) -> Self {
        self.0.location = None;
        self
    }

    /// Somewhere with the given name, country and coordinates.
    pub fn located(self, city: &str, country: &str, lat: f64, lon: f64) -> Self {
        self.in_city((city, country, lat, lon))
    }

    pub fn device(mut self, device_type: DeviceType) -> Self {
        if let Some(d) = self.0.device_info.as_mut() {
            d.device_type = device_type;
        }
        self
    }

    /// At a POS terminal: card-present.
    pub fn pos(self) -> Self {
        self.device(DeviceType::Pos)
    }

    pub fn kind(mut self, kind: TransactionType) -> Self {
        self.0.transaction_type = Some(kind);
        self
    }

    pub fn withdrawal(self) -> Self {
        self.kind(TransactionType::Withdrawal)
    }

    pub fn refund(self) -> Self {
        self.kind(TransactionType::Refund)
    }

    /// Online, from the browser `agent` at `ip`.
    pub fn on_device(mut self, agent: &str, ip: &str) -> Self {
        self.0.device_info = Some(DeviceInfo::new(
            DeviceType::Web,
            Some(ip.parse().unwrap()),
            Some(UserAgent::parse(agent).unwrap()),
        ));
        self
    }

    pub fn category(mut self, name: &str) -> Self {
        self.0.merchant_category = Some(MerchantCategory::parse(name).unwrap());
        self
    }

    pub fn build(self) -> Transaction {
        self.0
    }
}

/// A transaction as it sits in the log: approved, no rules, on time.
pub fn recorded(tx: Transaction) -> DomainEvent {
    TransactionRecorded {
        transaction: tx,
        decision: Decision::Approve,
        risk_score: 0.0,
        rules_fired: vec![],
        ruleset_version: "test".into(),
        late: false,
        alert_id: None,
        peers_as_of: None,
        shadow: None,
        model: None,
    }
    .into()
}

pub fn history(txs: impl IntoIterator<Item = TxBuilder>) -> Vec<DomainEvent> {
    txs.into_iter().map(|b| recorded(b.build())).collect()
}

/// `n` transactions, one every `every`, starting at `from`.
pub fn series(
    n: usize,
    from: DateTime<Utc>,
    every: Duration,
    make: impl Fn() -> TxBuilder,
) -> Vec<TxBuilder> {
    (0..n)
        .map(|i| make().at(from + every * i32::try_from(i).unwrap()))
        .collect()
}

/// The velocity rule (more than 5 in 10 minutes, weight 0.4), for
/// tests of window and scoring mechanics written around it; the default
/// ruleset counts a second transaction, as a weak signal.
pub fn velocity_of_five(r: &mut Ruleset) {
    r.rules.velocity_count.weight = 0.4;
    r.rules.velocity_count.thresholds.max_transactions = 5;
}

pub fn ids() -> DecisionIds {
    DecisionIds {
        transaction_event: Uuid::from_u128(1),
        alert_event: Uuid::from_u128(2),
        alert: AlertId(Uuid::from_u128(3)),
    }
}

pub struct Scenario {
    pub ruleset: Ruleset,
    pub state: CustomerState,
}

pub fn given(events: impl IntoIterator<Item = DomainEvent>) -> Scenario {
    let ruleset = Ruleset::default();
    let state = events
        .into_iter()
        .fold(CustomerState::for_ruleset(&ruleset), |s, e| evolve(s, &e));
    Scenario { ruleset, state }
}

impl Scenario {
    /// Same history, another ruleset (the state keeps its limits).
    pub fn with_ruleset(mut self, edit: impl FnOnce(&mut Ruleset)) -> Self {
        edit(&mut self.ruleset);
        self
    }

    pub fn when(self, tx: TxBuilder) -> Then {
        let cmd = RecordTransaction {
            transaction: tx.build(),
            ids: ids(),
            peers: Default::default(),
        };
        let decided = decide(&self.state, &cmd, &self.ruleset);
        Then {
            decided,
            scenario: self,
        }
    }
}

pub struct Then {
    pub decided: Decided,
    pub scenario: Scenario,
}

impl Then {
    pub fn hit(&self, rule: RuleId) -> Option<&RuleHit> {
        self.decided
            .recorded
            .rules_fired
            .iter()
            .find(|h| h.rule == rule)
    }

    pub fn then_fires(&self, rule: RuleId) -> &RuleHit {
        self.hit(rule).unwrap_or_else(|| {
            panic!(
                "expected {rule} to fire; fired: {:?}",
                self.decided.recorded.rules_fired
            )
        })
    }

    pub fn then_does_not_fire(&self, rule: RuleId) {
        assert!(
            self.hit(rule).is_none(),
            "expected {rule} not to fire, got {:?}",
            self.hit(rule)
        );
    }

    /// Records the decided transaction and goes on with another one.
    pub fn and_then(self) -> Scenario {
        let mut scenario = self.scenario;
        for pending in self.decided.into_events() {
            scenario.state.apply(&pending.event);
        }
        scenario
    }
}
