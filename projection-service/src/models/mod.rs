//! The read models, one projector each (the models themselves are declared
//! in `read_models`). `all()` is the registry the service,
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

#[cfg(test)]
mod tests {
    /// The projectors are the contract's models, in the contract's order.
    #[test]
    fn every_declared_model_has_its_projector() {
        let projectors: Vec<_> = super::all()
            .iter()
            .map(|p| (p.name(), p.version(), p.partitioned(), p.ddl(), p.tables()))
            .collect();
        let declared: Vec<_> = read_models::ALL
            .iter()
            .map(|m| (m.name, m.version, m.partitioned, m.ddl, m.tables))
            .collect();
        assert_eq!(projectors, declared);
    }
}
