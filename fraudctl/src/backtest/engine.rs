//! The backtest itself, pure: fed the log's events in order, it keeps two
//! states per customer and decides each recorded transaction twice.
//!
//! - Baseline: the policy that decided it (its recorded version as the
//!   `PolicyBook` folded from the `ruleset` and `policy` streams knows it, so
//!   legacy `RulesetPublished` and `PolicyPublished` versions both count; or
//!   the built-in default of that version), or the one given. Its state is folded from the *recorded* events, exactly as the
//!   command side folded them, so replaying with the deciding ruleset must
//!   give the recorded decision bit for bit; any difference is a mismatch.
//! - Candidate: its own state, folded from its own decisions (its lateness
//!   and history limits apply).
//!
//! Transactions outside `--from`/`--to` (event time) still build history;
//! only those inside are compared. Each compared transaction on which the
//! two sides differ (decision, score, alert or rules) is handed back to the
//! caller as a [`Difference`], so a long list never has to be held here.

use crate::eval::figures::Verdict;
use chrono::{DateTime, Utc};
use domain::events::TransactionRecorded;
use domain::ids::{AlertId, CustomerId};
use domain::peers::PeerReplay;
use domain::policy::book::PolicyBook;
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

/// One side's verdict on a transaction, for the list of differences.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SideVerdict {
    pub decision: String,
    pub risk_score: f64,
    pub alert: bool,
    pub rules: Vec<String>,
}

impl SideVerdict {
    fn of(r: &TransactionRecorded) -> SideVerdict {
        SideVerdict {
            decision: r.decision.as_str().to_owned(),
            risk_score: r.risk_score,
            alert: r.alert_id.is_some(),
            rules: r.rules_fired.iter().map(|h| h.rule.to_string()).collect(),
        }
    }
}

/// A compared transaction that the candidate decides differently from the
/// baseline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Difference {
    pub transaction_id: String,
    pub at: DateTime<Utc>,
    pub old: SideVerdict,
    pub new: SideVerdict,
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
    /// Compared transactions where the sides differ (decision, score,
    /// alert or rules).
    pub differing: u64,
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
    /// Every version the log published so far, legacy rulesets included.
    book: PolicyBook,
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
            book: PolicyBook::default(),
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
        if let Some(r) = self.book.version(version) {
            return Some(r.policy.clone());
        }
        (self.default.version == version).then(|| self.default.clone())
    }

    /// Folds the event at log `position` (ascending), recorded at `at`; a
    /// compared transaction the two sides decide differently comes back.
    pub fn on_event(
        &mut self,
        position: u64,
        at: DateTime<Utc>,
        event: DomainEvent,
    ) -> Option<Difference> {
        if matches!(
            event,
            DomainEvent::TransactionRecorded(_) | DomainEvent::TransactionLabeled(_)
        ) {
            // After the decision: a transaction's own event is not known to it.
            let peers_after = event.clone();
            let difference = self.on_domain_event(event);
            self.peers.apply(position, &peers_after);
            difference
        } else {
            // The policy lifecycle: the book ignores everything else.
            self.book.apply(&event, at);
            None
        }
    }

    fn on_domain_event(&mut self, event: DomainEvent) -> Option<Difference> {
        match event {
            DomainEvent::TransactionLabeled(l) => {
                self.outcome
                    .labels
                    .insert(l.transaction_id.as_str().to_owned(), l.is_fraud);
                None
            }
            DomainEvent::TransactionRecorded(recorded) => self.on_recorded(recorded),
            _ => None,
        }
    }

    fn on_recorded(&mut self, recorded: TransactionRecorded) -> Option<Difference> {
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
            return None;
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
        // Built-in and expression rules alike, by name.
        let (old_side, new_side) = (SideVerdict::of(&old), SideVerdict::of(&new));
        let mut names: Vec<&String> = old_side.rules.iter().chain(&new_side.rules).collect();
        names.sort_unstable();
        names.dedup();
        for rule in names {
            let in_old = old_side.rules.contains(rule);
            let in_new = new_side.rules.contains(rule);
            let d = o.rules.entry(rule.clone()).or_default();
            d.old += u64::from(in_old);
            d.new += u64::from(in_new);
            d.only_old += u64::from(in_old && !in_new);
            d.only_new += u64::from(in_new && !in_old);
        }
        let id = old.transaction.transaction_id.as_str().to_owned();
        o.old.insert(id.clone(), crate::eval::verdict_of(&old));
        o.new.insert(id.clone(), crate::eval::verdict_of(&new));
        let differs = old_side.decision != new_side.decision
            // The baseline is compared in its stored form (JSON numbers do
            // not always read back to the last bit): not a difference.
            || (old_side.risk_score - new_side.risk_score).abs() > 1e-9
            || old_side.alert != new_side.alert
            || old_side.rules != new_side.rules;
        if !differs {
            return None;
        }
        o.differing += 1;
        Some(Difference {
            transaction_id: id,
            at,
            old: old_side,
            new: new_side,
        })
    }
}
