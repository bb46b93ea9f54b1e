//! The alert lifecycle, given/when/then: given the events of `alert-{id}`
//! (with their event times), when an analyst acknowledges or resolves, then
//! an event to append, the answer that already stands, or a refusal.

use crate::support::at;
use chrono::{DateTime, Utc};
use domain::alert::{AcknowledgeAlert, AlertLifecycle, AlertRefusal, ResolveAlert};
use domain::events::{AlertAcknowledged, AlertResolved, DomainEvent, Verdict};
use domain::ids::AlertId;
use domain::outcome::{Aggregate, Outcome, Stamped, decide};
use domain::text::{Analyst, Note};
use uuid::Uuid;

fn alert() -> AlertId {
    AlertId(Uuid::from_u128(0x0190_c0de_0000_7000_8000_0000_0000_0001))
}

fn ack(analyst: &str) -> AlertAcknowledged {
    AlertAcknowledged {
        alert_id: alert(),
        analyst: Analyst::parse(analyst).unwrap(),
        note: Some(Note::parse(&format!("{analyst} has it")).unwrap()),
    }
}

fn resolution(verdict: Verdict, analyst: &str) -> AlertResolved {
    AlertResolved {
        alert_id: alert(),
        verdict,
        analyst: Analyst::parse(analyst).unwrap(),
        note: None,
    }
}

/// The alert's stream as given, event by event, folded with `evolve`.
fn given(events: Vec<(DomainEvent, DateTime<Utc>)>) -> AlertLifecycle {
    AlertLifecycle::replay(events.iter().map(|(e, t)| (e, *t)))
}

/// An alert raised elsewhere (its `AlertRaised` is in the customer's
/// stream), with nothing in its own stream yet.
fn raised() -> AlertLifecycle {
    given(vec![]).raised()
}

#[test]
fn an_open_alert_is_acknowledged() {
    let then = decide(&raised(), &AcknowledgeAlert(ack("ana")));
    assert_eq!(then, Ok(Outcome::Append(ack("ana").into())));
}

#[test]
fn a_second_acknowledgement_gets_the_first_back() {
    let state = given(vec![(ack("ana").into(), at(10, 0, 0))]);
    let then = decide(&state, &AcknowledgeAlert(ack("bob")));
    let first = Stamped {
        event: ack("ana"),
        at: at(10, 0, 0),
    };
    assert_eq!(then, Ok(Outcome::AlreadyDone(first)));
}

#[test]
fn a_resolved_alert_is_not_acknowledged_even_if_acknowledged_before() {
    let resolved = resolution(Verdict::FalsePositive, "ana");
    for history in [
        vec![(resolved.clone().into(), at(10, 0, 0))],
        vec![
            (ack("ana").into(), at(9, 0, 0)),
            (resolved.clone().into(), at(10, 0, 0)),
        ],
    ] {
        let then = decide(&given(history), &AcknowledgeAlert(ack("ana")));
        let stored = Stamped {
            event: resolved.clone(),
            at: at(10, 0, 0),
        };
        assert_eq!(then, Err(AlertRefusal::AlreadyResolved(stored)));
    }
}

#[test]
fn an_alert_is_resolved_acknowledged_or_not() {
    let wanted = resolution(Verdict::ConfirmedFraud, "ana");
    for state in [raised(), given(vec![(ack("bob").into(), at(9, 0, 0))])] {
        let then = decide(&state, &ResolveAlert(wanted.clone()));
        assert_eq!(then, Ok(Outcome::Append(wanted.clone().into())));
    }
}

#[test]
fn the_same_verdict_again_gets_the_first_resolution_back() {
    let first = resolution(Verdict::ConfirmedFraud, "ana");
    let state = given(vec![(first.clone().into(), at(10, 0, 0))]);
    let then = decide(
        &state,
        &ResolveAlert(resolution(Verdict::ConfirmedFraud, "bob")),
    );
    let stored = Stamped {
        event: first,
        at: at(10, 0, 0),
    };
    assert_eq!(then, Ok(Outcome::AlreadyDone(stored)));
}

#[test]
fn the_other_verdict_is_a_conflict() {
    let first = resolution(Verdict::ConfirmedFraud, "ana");
    let state = given(vec![(first.clone().into(), at(10, 0, 0))]);
    let then = decide(
        &state,
        &ResolveAlert(resolution(Verdict::FalsePositive, "bob")),
    );
    let stored = Stamped {
        event: first,
        at: at(10, 0, 0),
    };
    assert_eq!(then, Err(AlertRefusal::ResolvedOtherwise(stored)));
}

#[test]
fn an_alert_never_raised_is_refused() {
    let empty = given(vec![]);
    assert!(!empty.is_raised());
    assert_eq!(
        decide(&empty, &AcknowledgeAlert(ack("ana"))),
        Err(AlertRefusal::NotRaised)
    );
    assert_eq!(
        decide(
            &empty,
            &ResolveAlert(resolution(Verdict::FalsePositive, "ana"))
        ),
        Err(AlertRefusal::NotRaised)
    );
}

/// Whatever is in `alert-{id}` was written after the alert was found.
#[test]
fn events_in_its_stream_prove_the_alert_exists() {
    assert!(given(vec![(ack("ana").into(), at(9, 0, 0))]).is_raised());
}

/// Only the first of each stands, if a second ever got in.
#[test]
fn the_first_acknowledgement_and_resolution_stand() {
    let state = given(vec![
        (ack("ana").into(), at(9, 0, 0)),
        (ack("bob").into(), at(9, 5, 0)),
        (
            resolution(Verdict::FalsePositive, "ana").into(),
            at(10, 0, 0),
        ),
        (
            resolution(Verdict::ConfirmedFraud, "bob").into(),
            at(10, 5, 0),
        ),
    ]);
    assert_eq!(state.acknowledged().map(|a| a.at), Some(at(9, 0, 0)));
    let resolved = state.resolved().expect("resolved");
    assert_eq!(
        (resolved.event.verdict, resolved.at),
        (Verdict::FalsePositive, at(10, 0, 0))
    );
}
