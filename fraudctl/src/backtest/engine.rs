//! The backtest itself, pure: fed the log's events in order, it keeps two
//! states per customer and decides each recorded transaction twice.
//!
//! - Baseline: the ruleset that decided it (the `RulesetPublished` of its
//!   recorded version, or the built-in default of that version), or the one
//!   given. Its state is folded from the *recorded* events, exactly as the
//!   command side folded them, so replaying with the deciding ruleset must
//!   give the recorded decision bit for bit; any difference is a mismatch.
//! - Candidate: its own state, folded from its own decisions (its lateness
//!   and history limits apply).
//!
//! Transactions outside `--from`/`--to` (event time) still build history;
//! only those inside are compared.

use crate::eval::figures::Verdict;
use chrono::{DateTime, Utc};
use domain::events::TransactionRecorded;
use domain::ids::{AlertId, CustomerId};
use domain::peers::PeerReplay;
use domain::rules::RuleId;
use domain::{CustomerState, DecisionIds, DomainEvent, RecordTransaction, Ruleset, decide};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// One recorded decision that the baseline replay did not reproduce.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mismatch {
    pub transaction_id: String,
    pub recorded: String,
    pub replayed: String,
}

/// Rule firing counts under the old and the new ruleset.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RuleDiff {
    pub old: u64,
    pub new: u64,
    pub only_old: u64,
    pub only_new: u64,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    /// Transactions compared (inside the time range).
    pub compared: u64,
    /// Transactions read outside the range (history only).
    pub outside: u64,
    /// Decided by a ruleset version the log never published and that is not
    /// the built-in default: not compared with the recorded decision.
    pub unknown_ruleset: u64,
    pub mismatches: u64,
    pub mismatch_examples: Vec<Mismatch>,
    /// "old -> new" decision: count.
    pub decisions: BTreeMap<String, u64>,
    pub alerts_old: u64,
    pub alerts_new: u64,
    pub rules: BTreeMap<String, RuleDiff>,
    #[serde(skip)]
    pub old: HashMap<String, Verdict>,
    #[serde(skip)]
    pub new: HashMap<String, Verdict>,
    /// The newest label per transaction.
    #[serde(skip)]
    pub labels: HashMap<String, bool>,
}

pub struct Engine {
    fixed_baseline: Option<Arc<Ruleset>>,
    published: HashMap<String, Arc<Ruleset>>,
    default: Arc<Ruleset>,
    candidate: Ruleset,
    customers: HashMap<CustomerId, (CustomerState, CustomerState)>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    next_id: u128,
    /// What the log knew of merchants and categories, taken back to each
    /// decision's recorded position: the candidate sees the same features
    /// the live decision saw (`domain::peers`).
    peers: PeerReplay,
    pub outcome: Outcome,
}

/// What must match between a recorded decision and its replay (ids of
/// alerts are minted fresh, so only whether there was one).
fn signature(r: &TransactionRecorded) -> String {
    let rules: Vec<String> = r
        .rules_fired
        .iter()
        .map(|h| format!("{}={}/{}", h.rule, h.observed, h.threshold))
        .collect();
    format!(
        "{} score {} alert {} late {} version {} [{}]",
        r.decision,
        r.risk_score,
        r.alert_id.is_some(),
        r.late,
        r.ruleset_version,
        rules.join(", ")
    )
}

/// `r` as it reads back from the log: JSON numbers are parsed back not
/// always to the same last bit (serde_json's fast float parser), so a replay
/// is compared in its stored form, as the recorded event was.
fn stored_form(r: TransactionRecorded) -> TransactionRecorded {
    serde_json::to_string(&r)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(r)
}

fn same(a: &TransactionRecorded, b: &TransactionRecorded) -> bool {
    a.decision == b.decision
        && a.risk_score.to_bits() == b.risk_score.to_bits()
        && a.rules_fired == b.rules_fired
        && a.late == b.late
        && a.alert_id.is_some() == b.alert_id.is_some()
        && a.ruleset_version == b.ruleset_version
}

impl Engine {
    pub fn new(
        candidate: Ruleset,
        baseline: Option<Ruleset>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Engine {
        Engine {
            fixed_baseline: baseline.map(Arc::new),
            published: HashMap::new(),
            default: Arc::new(Ruleset::default()),
            candidate,
            customers: HashMap::new(),
            from,
            to,
            next_id: 0,
            peers: PeerReplay::default(),
            outcome: Outcome::default(),
        }
    }

    fn ids(&mut self) -> DecisionIds {
        let mut id = || {
            self.next_id += 1;
            Uuid::from_u128(self.next_id)
        };
        DecisionIds {
            transaction_event: id(),
            alert_event: id(),
            alert: AlertId(id()),
        }
    }

    fn baseline_for(&self, version: &str) -> Option<Arc<Ruleset>> {
        if let Some(r) = &self.fixed_baseline {
            return Some(r.clone());
        }
        if let Some(r) = self.published.get(version) {
            return Some(r.clone());
        }
        (self.default.version == version).then(|| self.default.clone())
    }

    /// Folds the event at log `position` (ascending).
    pub fn on_event(&mut self, position: u64, event: DomainEvent) {
        if matches!(
            event,
            DomainEvent::TransactionRecorded(_) | DomainEvent::TransactionLabeled(_)
        ) {
            // After the decision: a transaction's own event is not known to it.
            let peers_after = event.clone();
            self.on_domain_event(event);
            self.peers.apply(position, &peers_after);
        } else {
            self.on_domain_event(event);
        }
    }

    fn on_domain_event(&mut self, event: DomainEvent) {
        match event {
            DomainEvent::RulesetPublished(p) => {
                self.published.insert(p.version, Arc::new(p.ruleset));
            }
            DomainEvent::TransactionLabeled(l) => {
                self.outcome
                    .labels
                    .insert(l.transaction_id.as_str().to_owned(), l.is_fraud);
            }
            DomainEvent::TransactionRecorded(recorded) => self.on_recorded(recorded),
            _ => {}
        }
    }

    fn on_recorded(&mut self, recorded: TransactionRecorded) {
        let at = recorded.transaction.timestamp;
        let inside = self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t);
        let baseline = self.baseline_for(&recorded.ruleset_version);
        let (ids_old, ids_new) = (self.ids(), self.ids());
        let customer = recorded.transaction.customer_id.clone();
        let t = &recorded.transaction;
        let as_of = recorded.peers_as_of.unwrap_or(self.peers.position());
        let (merchant, category) = (t.merchant_id.as_ref(), t.merchant_category.as_ref());
        let peers = self
            .peers
            .snapshot(as_of, merchant, category, at)
            .unwrap_or_else(|| self.peers.book().snapshot(as_of, merchant, category, at));
        let Engine {
            customers,
            candidate,
            outcome,
            ..
        } = self;
        let limits = baseline.as_deref().unwrap_or(candidate);
        let (old_state, new_state) = customers.entry(customer).or_insert_with(|| {
            (
                CustomerState::for_ruleset(limits),
                CustomerState::for_ruleset(candidate),
            )
        });
        let command = |ids| RecordTransaction {
            transaction: recorded.transaction.clone(),
            ids,
            peers,
        };
        let replayed = baseline
            .as_ref()
            .map(|r| decide(old_state, &command(ids_old), r).recorded);
        let new = decide(new_state, &command(ids_new), candidate).recorded;
        // Each state folds what its side recorded: the log for the baseline.
        old_state.apply(&DomainEvent::TransactionRecorded(recorded.clone()));
        new_state.apply(&DomainEvent::TransactionRecorded(new.clone()));
        if !inside {
            outcome.outside += 1;
            return;
        }
        let o = outcome;
        o.compared += 1;
        let old = match replayed.map(stored_form) {
            Some(r) => {
                if !same(&r, &recorded) {
                    o.mismatches += 1;
                    if o.mismatch_examples.len() < 10 {
                        o.mismatch_examples.push(Mismatch {
                            transaction_id: recorded.transaction.transaction_id.to_string(),
                            recorded: signature(&recorded),
                            replayed: signature(&r),
                        });
                    }
                }
                r
            }
            None => {
                o.unknown_ruleset += 1;
                recorded
            }
        };
        *o.decisions
            .entry(format!("{} -> {}", old.decision, new.decision))
            .or_default() += 1;
        o.alerts_old += u64::from(old.alert_id.is_some());
        o.alerts_new += u64::from(new.alert_id.is_some());
        for rule in RuleId::ALL {
            let in_old = old.rules_fired.iter().any(|h| h.rule == rule);
            let in_new = new.rules_fired.iter().any(|h| h.rule == rule);
            if !(in_old || in_new) {
                continue;
            }
            let d = o.rules.entry(rule.as_str().to_owned()).or_default();
            d.old += u64::from(in_old);
            d.new += u64::from(in_new);
            d.only_old += u64::from(in_old && !in_new);
            d.only_new += u64::from(in_new && !in_old);
        }
        let id = old.transaction.transaction_id.as_str().to_owned();
        o.old.insert(id.clone(), crate::eval::verdict_of(&old));
        o.new.insert(id, crate::eval::verdict_of(&new));
    }
}
