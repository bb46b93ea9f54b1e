//! A policy with a model: the model's probability joins the rules' score
//! (`scoring::combine`), the decision and the alert follow the combined
//! risk, every decision records the model's version and score, and an alert
//! freezes the features that pushed the score up.

use crate::support::*;
use domain::events::{DomainEvent, ModelTrained};
use domain::model::drift::{Bins, Reference};
use domain::model::metrics::quality;
use domain::model::{Forest, Model, ModelBook, Node, Training, Tree};
use domain::scoring::{Decision, Priority, combine};

/// amount >= 400 -> log-odds +4 (p ~ 0.98), else -6; reads `amount` and
/// `is_night` (which never splits, so never explains).
fn big_amount_model(version: &str) -> Model {
    let at = day0();
    Model {
        version: version.into(),
        catalogue_version: domain::features::VERSION,
        features: vec!["is_night".into(), "amount".into()],
        forest: Forest {
            base_score: 0.0,
            trees: vec![Tree {
                nodes: vec![
                    Node {
                        feature: 1,
                        threshold: 400.0,
                        left: 1,
                        right: 2,
                        missing: 1,
                        weight: -5.0,
                    },
                    Node::leaf(-6.0),
                    Node::leaf(4.0),
                ],
            }],
        },
        training: Training::none(at, "hand-made"),
        validation: quality(&[]),
        importances: vec![],
        reference: Reference {
            features: vec![Bins::fit(&[0.0, 1.0], 10), Bins::fit(&[10.0, 800.0], 10)],
            score: Bins::fit(&[0.1, 0.9], 10),
        },
    }
}

fn book_with(model: Model) -> ModelBook {
    let mut book = ModelBook::default();
    book.apply(&DomainEvent::ModelTrained(ModelTrained {
        model: Box::new(model),
        trained_by: "test".into(),
    }));
    book
}

fn with_model(book: &ModelBook) -> impl FnOnce(&mut domain::Ruleset) + '_ {
    move |r| {
        r.version = "with-model".into();
        r.model = Some("m-1".into());
        book.attach(r).unwrap();
    }
}

#[test]
fn a_confident_model_flags_what_no_rule_saw_and_explains_it() {
    let book = book_with(big_amount_model("m-1"));
    let then = given(history(
        (0..10).map(|i| tx().amount(500.0).at(at(2 * i, 0, 0))),
    ))
    .with_ruleset(with_model(&book))
    .when(tx().amount(500.0).at(at(21, 0, 0)));
    let r = &then.decided.recorded;
    assert!(r.rules_fired.is_empty(), "{:?}", r.rules_fired);
    let model = r.model.as_ref().unwrap();
    assert_eq!(model.version, "m-1");
    assert!((model.score - 0.982014).abs() < 1e-6, "{}", model.score);
    assert_eq!(r.risk_score, combine(0.0, model.score));
    assert_eq!(r.decision, Decision::Decline);
    let (_, alert) = then.decided.alert.as_ref().unwrap();
    assert_eq!(alert.priority, Priority::P0);
    assert_eq!(alert.model, r.model);
    assert_eq!(alert.top_features.len(), 1, "{:?}", alert.top_features);
    let top = &alert.top_features[0];
    assert_eq!(top.feature, "amount");
    assert_eq!(top.value, Some(500.0));
    assert_eq!(top.contribution, 9.0);
}

#[test]
fn an_unsure_model_leaves_the_rules_in_charge() {
    let book = book_with(big_amount_model("m-1"));
    let then = given(history(
        (0..10).map(|i| tx().amount(50.0).at(at(2 * i, 0, 0))),
    ))
    .with_ruleset(with_model(&book))
    .when(tx().amount(60.0).at(at(21, 0, 0)));
    let r = &then.decided.recorded;
    let score = r.model.as_ref().unwrap().score;
    assert!(score < 0.01, "{score}");
    assert_eq!(r.decision, Decision::Approve);
    assert!(then.decided.alert.is_none());
}

#[test]
fn without_a_model_the_risk_is_the_rules_score_and_nothing_is_recorded() {
    let then = given(history(
        (0..10).map(|i| tx().amount(500.0).at(at(2 * i, 0, 0))),
    ))
    .when(tx().amount(500.0).at(at(21, 0, 0)));
    assert_eq!(then.decided.recorded.model, None);
    assert_eq!(then.decided.recorded.risk_score, 0.0);
}

#[test]
fn combining_never_lowers_either_side() {
    for rules in [0.0, 0.3, 0.5, 0.9, 1.0] {
        for model in [0.0, 0.1, 0.5, 0.99, 1.0, f64::NAN] {
            let risk = combine(rules, model);
            assert!(risk >= rules - 1e-9, "{rules} {model} {risk}");
            if !model.is_nan() {
                assert!(risk >= model - 1e-4, "{rules} {model} {risk}");
            }
            assert!((0.0..=1.0).contains(&risk));
        }
    }
    assert_eq!(combine(0.4, 0.0), 0.4);
    assert_eq!(combine(0.5, 0.5), 0.75);
}

#[test]
fn a_policy_naming_an_unknown_or_unusable_model_is_refused() {
    let book = book_with(big_amount_model("m-1"));
    let mut policy = domain::Ruleset {
        model: Some("m-404".into()),
        ..Default::default()
    };
    assert!(
        book.attach(&mut policy)
            .unwrap_err()
            .to_string()
            .contains("m-404")
    );
    let mut broken = big_amount_model("m-2");
    broken.features[1] = "no_such_feature".into();
    let book = book_with(broken);
    policy.model = Some("m-2".into());
    let err = book.attach(&mut policy).unwrap_err().to_string();
    assert!(err.contains("no_such_feature"), "{err}");
}

#[test]
fn the_model_event_round_trips_through_json() {
    let event = DomainEvent::ModelTrained(ModelTrained {
        model: Box::new(big_amount_model("m-1")),
        trained_by: "test".into(),
    });
    let json = event.to_payload().unwrap();
    let back = DomainEvent::from_payload("ModelTrained", 1, json.clone()).unwrap();
    // (Compared as JSON: the empty slice's figures are NaN, never equal.)
    assert_eq!(back.to_payload().unwrap(), json);
    assert!(matches!(back, DomainEvent::ModelTrained(m) if m.model.version == "m-1"));
}
