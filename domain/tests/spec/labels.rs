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
    TransactionLabeled::new(
        TransactionId::parse("tx-1").unwrap(),
        is_fraud,
        LabelSource::parse(source).unwrap(),
    )
}

/// The event `decide` appends for `wanted` when the status before was `was`.
fn appended(wanted: TransactionLabeled, was: bool) -> Outcome<Stamped<TransactionLabeled>> {
    Outcome::Append(
        TransactionLabeled {
            was_fraud: Some(was),
            ..wanted
        }
        .into(),
    )
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
        appended(wanted, false)
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
    assert_eq!(when(&state, reversed.clone()), appended(reversed, true));
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
    assert_eq!(when(&state, analyst.clone()), appended(analyst, true));
    // Sources are compared lower case, as parsed.
    assert!(matches!(
        when(&state, label(true, "Chargeback")),
        Outcome::AlreadyDone(_)
    ));
}

/// The status is the newest label from any source: an analyst clearing a
/// chargeback makes the transaction not fraud, and the next label says so.
#[test]
fn the_newest_label_of_any_source_is_the_status() {
    let state = given(vec![
        (label(true, "chargeback").into(), at(10, 0, 0)),
        (label(false, "analyst").into(), at(11, 0, 0)),
    ]);
    assert!(!state.is_fraud());
    let again = label(true, "issuer");
    assert_eq!(when(&state, again.clone()), appended(again, false));
    assert!(
        label(true, "x").flips(),
        "a v1 fraud label counts as a flip"
    );
}
