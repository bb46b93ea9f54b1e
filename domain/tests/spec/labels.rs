//! Labels, given/when/then: given the events of `label-{transaction_id}`,
//! when a source labels the transaction, then an event to append or the
//! label that already stands. Nothing is refused.

use crate::support::at;
use chrono::{DateTime, Utc};
use domain::events::{DomainEvent, TransactionLabeled};
use domain::ids::TransactionId;
use domain::label::{LabelHistory, LabelTransaction};
use domain::outcome::{Aggregate, Outcome, Stamped, decide};
use domain::text::LabelSource;

fn label(is_fraud: bool, source: &str) -> TransactionLabeled {
    TransactionLabeled {
        transaction_id: TransactionId::parse("tx-1").unwrap(),
        is_fraud,
        source: LabelSource::parse(source).unwrap(),
    }
}

fn given(events: Vec<(DomainEvent, DateTime<Utc>)>) -> LabelHistory {
    LabelHistory::replay(events.iter().map(|(e, t)| (e, *t)))
}

fn when(state: &LabelHistory, wanted: TransactionLabeled) -> Outcome<Stamped<TransactionLabeled>> {
    match decide(state, &LabelTransaction(wanted)) {
        Ok(outcome) => outcome,
        Err(never) => match never {},
    }
}

#[test]
fn a_first_label_is_recorded_even_for_an_unknown_transaction() {
    let wanted = label(true, "chargeback");
    assert_eq!(
        when(&given(vec![]), wanted.clone()),
        Outcome::Append(wanted.into())
    );
}

#[test]
fn a_repeat_from_the_same_source_gets_the_stored_label_back() {
    let state = given(vec![(label(true, "chargeback").into(), at(10, 0, 0))]);
    let stored = Stamped {
        event: label(true, "chargeback"),
        at: at(10, 0, 0),
    };
    assert_eq!(
        when(&state, label(true, "chargeback")),
        Outcome::AlreadyDone(stored)
    );
}

/// A chargeback reversed is a new fact: the newest per source is the truth.
#[test]
fn a_changed_label_is_a_new_fact() {
    let state = given(vec![(label(true, "chargeback").into(), at(10, 0, 0))]);
    let reversed = label(false, "chargeback");
    assert_eq!(
        when(&state, reversed.clone()),
        Outcome::Append(reversed.into())
    );
    // And once reversed, the newest stands.
    let state = given(vec![
        (label(true, "chargeback").into(), at(10, 0, 0)),
        (label(false, "chargeback").into(), at(11, 0, 0)),
    ]);
    assert!(matches!(
        when(&state, label(false, "chargeback")),
        Outcome::AlreadyDone(Stamped { at, .. }) if at == crate::support::at(11, 0, 0)
    ));
    assert!(matches!(
        when(&state, label(true, "chargeback")),
        Outcome::Append(_)
    ));
}

#[test]
fn sources_are_independent() {
    let state = given(vec![(label(true, "chargeback").into(), at(10, 0, 0))]);
    let analyst = label(true, "analyst");
    assert_eq!(
        when(&state, analyst.clone()),
        Outcome::Append(analyst.into())
    );
    // Sources are compared lower case, as parsed.
    assert!(matches!(
        when(&state, label(true, "Chargeback")),
        Outcome::AlreadyDone(_)
    ));
}
