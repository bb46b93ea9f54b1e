//! The customer aggregate: `CustomerState`, `decide` and `evolve`.
//!
//! The state holds just enough of a customer's past to run the rules, and is
//! bounded: the recent transactions by event time (`window`), a running
//! mean/deviation of amounts (all, purchases only, withdrawals only, and per
//! merchant category), hour-of-day histograms (UTC and the card holder's
//! local solar time), the merchant categories seen (capped), the devices
//! used (capped), the countries transacted in (capped), the newest alert's
//! and the newest transaction's event times, and the longer memory the
//! features need (`crate::memory`: per-day totals to 30 days, the merchants
//! paid, the card-present places). `decide` reads it and returns
//! the events to append; `evolve` folds an event in. Both are pure: ids and
//! clocks come in with the command.

use crate::commands::RecordTransaction;
use crate::devices::{DeviceKey, KnownDevices};
use crate::events::{AlertRaised, DomainEvent, ModelScore, ShadowOutcome, TransactionRecorded};
use crate::features::{self, Features};
use crate::geo::CountryCode;
use crate::memory::{DailyTotals, KnownMerchants, Places};
use crate::model::{Scored, TOP_FEATURES};
use crate::peers;
use crate::policy::rules::{self as policy_rules, EvaluationFailure};
use crate::rules::{self, RuleHit, Subject};
use crate::ruleset::{HistoryLimits, Ruleset};
use crate::scoring::{self, Decision, Priority};
use crate::stats::{HourHistogram, RunningStats};
use crate::text::MerchantCategory;
use crate::transaction::{Transaction, TransactionType};
use crate::window::{RecentWindow, WindowEntry};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What the rules know about one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerState {
    limits: HistoryLimits,
    window: RecentWindow,
    amounts: RunningStats,
    /// Purchases only: withdrawals (cash in round sums) and refunds would
    /// blur what the customer usually pays.
    purchases: RunningStats,
    /// Cash withdrawals only: compared with each other, not with purchases.
    withdrawals: RunningStats,
    hours: HourHistogram,
    /// The same transactions by local solar hour (see [`CustomerState::local_hour`]).
    local_hours: HourHistogram,
    /// Every category used (at most `max_categories`), with its amounts.
    categories: BTreeMap<MerchantCategory, RunningStats>,
    devices: KnownDevices,
    /// Every country transacted in (at most `max_countries`), with counts.
    countries: BTreeMap<CountryCode, u32>,
    /// Event time of the newest transaction that raised an alert.
    last_alert: Option<DateTime<Utc>>,
    daily: DailyTotals,
    merchants: KnownMerchants,
    places: Places,
    newest: Option<DateTime<Utc>>,
    transactions: u64,
    late_transactions: u64,
}

impl Default for CustomerState {
    fn default() -> Self {
        CustomerState::new(HistoryLimits::default())
    }
}

impl CustomerState {
    /// An empty state keeping at most `limits` of history.
    pub fn new(limits: HistoryLimits) -> Self {
        CustomerState {
            limits,
            window: RecentWindow::default(),
            amounts: RunningStats::default(),
            purchases: RunningStats::default(),
            withdrawals: RunningStats::default(),
            hours: HourHistogram::default(),
            local_hours: HourHistogram::default(),
            categories: BTreeMap::new(),
            devices: KnownDevices::default(),
            countries: BTreeMap::new(),
            last_alert: None,
            daily: DailyTotals::default(),
            merchants: KnownMerchants::default(),
            places: Places::default(),
            newest: None,
            transactions: 0,
            late_transactions: 0,
        }
    }

    /// An empty state with the ruleset's history limits.
    pub fn for_ruleset(ruleset: &Ruleset) -> Self {
        CustomerState::new(ruleset.history.clone())
    }

    /// Rebuilds a state from a customer's stream (in stream order).
    pub fn replay<'a>(
        limits: HistoryLimits,
        events: impl IntoIterator<Item = &'a DomainEvent>,
    ) -> Self {
        events.into_iter().fold(CustomerState::new(limits), evolve)
    }

    pub fn window(&self) -> &RecentWindow {
        &self.window
    }

    pub fn amount_stats(&self) -> &RunningStats {
        &self.amounts
    }

    /// Amounts of purchases (and of v1 transactions, whose type is unknown).
    pub fn purchase_stats(&self) -> &RunningStats {
        &self.purchases
    }

    /// Amounts of cash withdrawals.
    pub fn withdrawal_stats(&self) -> &RunningStats {
        &self.withdrawals
    }

    /// Amounts of the customer's transactions in `category`, if ever used.
    pub fn category_stats(&self, category: &MerchantCategory) -> Option<&RunningStats> {
        self.categories.get(category)
    }

    pub fn hours(&self) -> &HourHistogram {
        &self.hours
    }

    /// Earlier transactions by the customer's local solar hour.
    pub fn local_hours(&self) -> &HourHistogram {
        &self.local_hours
    }

    /// The hour of day (0..24) of `tx` in local solar time where the card
    /// holder is: at the transaction's own place when it is card-present,
    /// else at the newest card-present place at or before it (an online
    /// purchase's coordinates may be the merchant's or the IP's, not where
    /// the customer sleeps), else at the transaction's own coordinates; UTC
    /// when none is known. Solar time (longitude / 15 hours) needs no time
    /// zone table and is within about an hour of the clock on the wall.
    pub fn local_hour(&self, tx: &Transaction) -> usize {
        match self.holder_place(tx) {
            Some(p) => HourHistogram::solar_hour_of(tx.timestamp, p.lon()),
            None => HourHistogram::hour_of(tx.timestamp),
        }
    }

    /// Where the card holder is taken to be for local time (see
    /// [`CustomerState::local_hour`]).
    pub fn holder_place(&self, tx: &Transaction) -> Option<crate::geo::Coordinates> {
        if tx.is_card_present() {
            tx.coordinates()
        } else {
            self.window
                .sighting_before(tx.timestamp)
                .map(|s| s.place)
                .or_else(|| tx.coordinates())
        }
    }

    /// Count and sum of amounts per UTC day, 30 days back.
    pub fn daily(&self) -> &DailyTotals {
        &self.daily
    }

    /// The merchants paid (fingerprints, capped).
    pub fn merchants(&self) -> &KnownMerchants {
        &self.merchants
    }

    /// The card-present places; the most used is home.
    pub fn places(&self) -> &Places {
        &self.places
    }

    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    /// The customer's categories remembered.
    pub fn category_count(&self) -> usize {
        self.categories.len()
    }

    /// Approximate bytes this state takes (inline and on the heap), for
    /// the memory figures in ADR 0014.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        let window: usize = self
            .window
            .iter()
            .map(|e| size_of::<WindowEntry>() + e.city.as_ref().map_or(0, |c| c.len()))
            .sum();
        let categories: usize = self
            .categories
            .keys()
            .map(|k| k.as_str().len() + 24 + size_of::<RunningStats>() + 16)
            .sum();
        size_of::<CustomerState>()
            + window
            + categories
            + self.devices.len() * size_of::<crate::devices::DeviceSeen>()
            + self.countries.len() * (size_of::<CountryCode>() + 4 + 16)
            + self.daily.active_days() * 16
            + self.merchants.len() * 4
            + 8 * 24
    }

    /// The devices the customer has used (web and app transactions).
    pub fn devices(&self) -> &KnownDevices {
        &self.devices
    }

    /// Event time of the newest transaction that raised an alert.
    pub fn last_alert_at(&self) -> Option<DateTime<Utc>> {
        self.last_alert
    }

    /// Transactions recorded so far (all of them, not only the window's).
    pub fn transaction_count(&self) -> u64 {
        self.transactions
    }

    /// Of those, how many were late.
    pub fn late_count(&self) -> u64 {
        self.late_transactions
    }

    /// The newest event time seen.
    pub fn newest_event_time(&self) -> Option<DateTime<Utc>> {
        self.newest
    }

    /// Whether `category` has never been used. Once the capped set is full
    /// nothing counts as new: such a customer has no "usual" categories.
    pub fn category_is_new(&self, category: &MerchantCategory) -> bool {
        self.categories.len() < self.limits.max_categories as usize
            && !self.categories.contains_key(category)
    }

    /// The countries the customer has transacted in.
    pub fn countries(&self) -> impl Iterator<Item = CountryCode> + '_ {
        self.countries.keys().copied()
    }

    /// Whether `country` has never been seen. Once the capped set is full
    /// nothing counts as new.
    pub fn country_is_new(&self, country: CountryCode) -> bool {
        self.countries.len() < self.limits.max_countries as usize
            && !self.countries.contains_key(&country)
    }

    /// Late: older than the newest event time by more than `allowed`.
    pub fn is_late(&self, at: DateTime<Utc>, allowed: Duration) -> bool {
        self.newest.is_some_and(|newest| newest - at > allowed)
    }

    /// Folds one event in; events of other streams are ignored.
    pub fn apply(&mut self, event: &DomainEvent) {
        if let DomainEvent::TransactionRecorded(recorded) = event {
            self.record(recorded);
        }
    }

    fn record(&mut self, recorded: &TransactionRecorded) {
        let tx = &recorded.transaction;
        // Before the window changes: the place known before this transaction.
        let local_hour = self.local_hour(tx);
        let newest = self.newest.map_or(tx.timestamp, |n| n.max(tx.timestamp));
        self.newest = Some(newest);
        self.window.insert(WindowEntry::of(tx));
        self.daily
            .add(peers::day_of(tx.timestamp), tx.amount.as_f64());
        if let Some(m) = &tx.merchant_id {
            self.merchants.record(m, self.limits.max_merchants as usize);
        }
        if tx.is_card_present()
            && let Some(p) = tx.coordinates()
        {
            self.places.record(p);
        }
        let horizon = newest
            .checked_sub_signed(Duration::seconds(self.limits.retention_secs.into()))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.window
            .evict(horizon, self.limits.max_transactions as usize);
        let amount = tx.amount.as_f64();
        self.amounts.push(amount);
        if !matches!(
            tx.transaction_type,
            Some(TransactionType::Withdrawal | TransactionType::Refund)
        ) {
            self.purchases.push(amount);
        }
        if tx.transaction_type == Some(TransactionType::Withdrawal) {
            self.withdrawals.push(amount);
        }
        self.hours.push(tx.timestamp);
        self.local_hours.push_hour(local_hour);
        if let Some(category) = &tx.merchant_category {
            if let Some(stats) = self.categories.get_mut(category) {
                stats.push(amount);
            } else if self.category_is_new(category) {
                let mut stats = RunningStats::default();
                stats.push(amount);
                self.categories.insert(category.clone(), stats);
            }
        }
        if let Some(country) = tx.country() {
            if let Some(n) = self.countries.get_mut(&country) {
                *n = n.saturating_add(1);
            } else if self.country_is_new(country) {
                self.countries.insert(country, 1);
            }
        }
        if let Some(key) = DeviceKey::of(tx) {
            self.devices
                .record(key, tx.timestamp, self.limits.max_devices as usize);
        }
        if recorded.alert_id.is_some() {
            self.last_alert = Some(
                self.last_alert
                    .map_or(tx.timestamp, |t| t.max(tx.timestamp)),
            );
        }
        self.transactions += 1;
        if recorded.late {
            self.late_transactions += 1;
        }
    }
}

/// `evolve(state, event) -> state`: [`CustomerState::apply`] as a fold step.
pub fn evolve(mut state: CustomerState, event: &DomainEvent) -> CustomerState {
    state.apply(event);
    state
}

/// An event `decide` wants appended, with its envelope id and event time.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub event_id: Uuid,
    pub event_time: DateTime<Utc>,
    pub event: DomainEvent,
}

/// What `decide` concluded: the recorded transaction and, if the score
/// reached an alert priority, the alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub transaction_event_id: Uuid,
    pub recorded: TransactionRecorded,
    pub alert: Option<(Uuid, AlertRaised)>,
    /// The catalogue as the decision saw it (not recorded: replay
    /// recomputes it from the log, `crate::features::FeatureReplay`).
    pub features: Features,
    /// Expression rules of the live policy that failed while evaluating
    /// (counted as not fired), for the caller's metric and log.
    pub failures: Vec<EvaluationFailure>,
    /// The same for the shadow policy.
    pub shadow_failures: Vec<EvaluationFailure>,
}

impl Decided {
    pub fn priority(&self) -> Option<Priority> {
        self.alert.as_ref().map(|(_, a)| a.priority)
    }

    /// The events to append to `customer-{id}`, in order.
    pub fn into_events(self) -> Vec<PendingEvent> {
        let event_time = self.recorded.transaction.timestamp;
        let mut events = vec![PendingEvent {
            event_id: self.transaction_event_id,
            event_time,
            event: self.recorded.into(),
        }];
        if let Some((event_id, alert)) = self.alert {
            events.push(PendingEvent {
                event_id,
                event_time,
                event: alert.into(),
            });
        }
        events
    }
}

/// Decides on a transaction against the customer's state before it. Pure and
/// deterministic. The caller makes sure `state` is this customer's.
pub fn decide(state: &CustomerState, cmd: &RecordTransaction, ruleset: &Ruleset) -> Decided {
    decide_with_shadow(state, cmd, ruleset, None)
}

/// [`decide`] with `live`, and, when a shadow policy is set, what `shadow`
/// would have decided, recorded in the event (`shadow`) and acted on
/// nowhere: no alert, no effect on the answer.
pub fn decide_with_shadow(
    state: &CustomerState,
    cmd: &RecordTransaction,
    live: &Ruleset,
    shadow: Option<&Ruleset>,
) -> Decided {
    let tx = &cmd.transaction;
    let entry = WindowEntry::of(tx);
    let judged = judge(state, cmd, &entry, live);
    let (shadow, shadow_failures) = match shadow {
        Some(policy) => {
            let s = judge(state, cmd, &entry, policy);
            let outcome = ShadowOutcome {
                policy_version: policy.version.clone(),
                decision: s.decision,
                risk_score: s.risk_score,
                priority: s.priority,
                rules_fired: s.hits.into_iter().map(|h| h.rule).collect(),
                model: s.model,
            };
            (Some(outcome), s.failures)
        }
        None => (None, Vec::new()),
    };
    let late = state.is_late(
        tx.timestamp,
        Duration::seconds(live.lateness.allowed_secs.into()),
    );
    let alert = judged.priority.map(|priority| {
        let raised = AlertRaised {
            alert_id: cmd.ids.alert,
            transaction_id: tx.transaction_id.clone(),
            customer_id: tx.customer_id.clone(),
            priority,
            risk_score: judged.risk_score,
            decision: judged.decision,
            rules_fired: judged.hits.clone(),
            ruleset_version: live.version.clone(),
            model: judged.model.clone(),
            top_features: match (live.scorer.get(), &judged.scored) {
                (Some(m), Some(scored)) => scored.top(m, TOP_FEATURES),
                _ => Vec::new(),
            },
        };
        (cmd.ids.alert_event, raised)
    });
    Decided {
        transaction_event_id: cmd.ids.transaction_event,
        recorded: TransactionRecorded {
            transaction: tx.clone(),
            decision: judged.decision,
            risk_score: judged.risk_score,
            rules_fired: judged.hits,
            ruleset_version: live.version.clone(),
            late,
            alert_id: alert.as_ref().map(|(_, a)| a.alert_id),
            peers_as_of: Some(cmd.peers.as_of),
            shadow,
            model: judged.model,
        },
        alert,
        features: judged.features,
        failures: judged.failures,
        shadow_failures,
    }
}

/// One policy's verdict on one transaction.
struct Judgement {
    hits: Vec<RuleHit>,
    features: Features,
    risk_score: f64,
    decision: Decision,
    priority: Option<Priority>,
    failures: Vec<EvaluationFailure>,
    model: Option<ModelScore>,
    /// The model's walk, kept for the alert's explanation.
    scored: Option<Scored>,
}

/// The built-in rules, then the catalogue (which holds their hits), then
/// the expression rules over the transaction and the catalogue; the rules'
/// score from all the hits, combined with the policy's model when it has
/// one (`scoring::combine`); the decision and priority from that.
fn judge(
    state: &CustomerState,
    cmd: &RecordTransaction,
    entry: &WindowEntry,
    policy: &Ruleset,
) -> Judgement {
    let tx = &cmd.transaction;
    let mut hits = rules::evaluate(policy, Subject { tx, entry, state });
    let features = features::compute(features::Inputs {
        state,
        tx,
        peers: &cmd.peers,
        hits: &hits,
    });
    let mut failures = Vec::new();
    policy_rules::evaluate(
        &policy.expression_rules,
        tx,
        &features,
        &mut hits,
        &mut failures,
    );
    let rules_score = scoring::risk_score(&hits);
    let scored = policy.scorer.get().map(|m| m.score(&features));
    let model = policy
        .scorer
        .get()
        .zip(scored.as_ref())
        .map(|(m, s)| ModelScore {
            version: m.version().to_owned(),
            score: (s.probability * 1e6).round() / 1e6,
        });
    let risk_score = match &model {
        Some(m) => scoring::combine(rules_score, m.score),
        None => rules_score,
    };
    Judgement {
        model,
        scored,
        decision: scoring::decision_for(risk_score, &policy.decision),
        priority: scoring::priority_for(risk_score, &policy.priority),
        hits,
        features,
        risk_score,
        failures,
    }
}
