//! A model without a trainer: a hand-made forest over two catalogue
//! features (`amount >= 400` -> log-odds +4, p ~ 0.982; else -6), and the
//! events `fraudctl model train --promote` appends to put a model live:
//! `ModelTrained` in the `model` stream, then `PolicyPublished` and
//! `PolicyPromoted` of a policy naming it in the `policy` stream, straight
//! to the log (no HTTP), as the command side's followers must pick up.

use command_service::commands::events::new_event;
use domain::DomainEvent;
use domain::events::ModelTrained;
use domain::model::drift::{Bins, Reference};
use domain::model::metrics::quality;
use domain::model::{Forest, Model, Node, Training, Tree};
use event_store::{EventMetadata, EventStore, ExpectedVersion};

/// Reads `is_night` (never split on) and `amount` (split at 400).
pub fn big_amount_model(version: &str) -> Model {
    let at = chrono::Utc::now();
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

/// Appends `events` to `stream` (any version), with the time now.
pub async fn append(store: &dyn EventStore, stream: &str, events: Vec<DomainEvent>) {
    let at = chrono::Utc::now();
    let new = events
        .iter()
        .map(|e| new_event(e, at, EventMetadata::default()).expect("event"))
        .collect();
    store
        .append(stream, ExpectedVersion::Any, new)
        .await
        .expect("append");
}

/// Records `model` in the `model` stream.
pub async fn record_model(store: &dyn EventStore, model: Model) {
    append(
        store,
        domain::streams::MODEL,
        vec![DomainEvent::ModelTrained(ModelTrained {
            model: Box::new(model),
            trained_by: "fraudctl test".into(),
        })],
    )
    .await;
}

/// What `fraudctl model train --promote` appends: the model, then the
/// default policy under `policy` naming it, published and promoted.
pub async fn train_and_promote(store: &dyn EventStore, model: &str, policy: &str) {
    record_model(store, big_amount_model(model)).await;
    publish_and_promote(store, policy, model).await;
}

/// The default policy under `policy`, naming `model` (recorded or not),
/// published and promoted straight in the log.
pub async fn publish_and_promote(store: &dyn EventStore, policy: &str, model: &str) {
    let book = command_service::policy::live::read_book(store)
        .await
        .expect("book");
    let draft = domain::Ruleset {
        version: policy.into(),
        model: Some(model.into()),
        ..domain::Ruleset::default()
    };
    let mut events = book
        .publish(draft, "fraudctl test", false)
        .expect("publish");
    let mut next = book.clone();
    for e in &events {
        next.apply(e, chrono::Utc::now());
    }
    events.push(
        next.promote(policy, "fraudctl test", false)
            .expect("promote"),
    );
    append(store, domain::streams::POLICY, events).await;
}
