//! The read models, one projector each. `all()` is the registry the service,
//! `fraudctl replay` and the tests share.

pub mod alerts;
pub mod data_quality;
pub mod geo;
pub mod merchants;
pub mod profiles;
pub mod transactions;
pub mod velocity;

use crate::projector::Projector;
use std::sync::Arc;

/// Every projector, in the order they are started and listed.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(transactions::Transactions),
        Arc::new(velocity::Velocity),
        Arc::new(geo::Geo),
        Arc::new(profiles::Profiles),
        Arc::new(alerts::Alerts),
        Arc::new(merchants::Merchants),
        Arc::new(data_quality::DataQuality),
    ]
}

/// The projector called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projector>> {
    all().into_iter().find(|p| p.name() == name)
}
