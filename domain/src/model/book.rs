//! The fold of the `model` stream: every recorded model by version, loaded
//! once. A model this build cannot load (a catalogue it does not have) is
//! kept with its reason, so a policy naming it is refused with that reason
//! rather than scoring with half a model.

use super::{LoadedModel, ModelError};
use crate::events::DomainEvent;
use crate::ruleset::Ruleset;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a policy cannot get its model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    #[error("model {0} is not in the model stream")]
    Unknown(String),
    #[error(transparent)]
    Unusable(#[from] ModelError),
}

/// Recorded models by version.
#[derive(Debug, Clone, Default)]
pub struct ModelBook {
    models: BTreeMap<String, Result<Arc<LoadedModel>, ModelError>>,
}

impl ModelBook {
    /// Folds one event (others are ignored).
    pub fn apply(&mut self, event: &DomainEvent) {
        if let DomainEvent::ModelTrained(trained) = event {
            let version = trained.model.version.clone();
            let loaded = (*trained.model).clone().load().map(Arc::new);
            self.models.insert(version, loaded);
        }
    }

    /// The loaded model of a version.
    pub fn get(&self, version: &str) -> Result<Arc<LoadedModel>, AttachError> {
        match self.models.get(version) {
            None => Err(AttachError::Unknown(version.to_owned())),
            Some(Err(e)) => Err(AttachError::Unusable(e.clone())),
            Some(Ok(m)) => Ok(Arc::clone(m)),
        }
    }

    pub fn contains(&self, version: &str) -> bool {
        self.models.contains_key(version)
    }

    /// Versions in order.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Gives `policy` the model it names (none when it names none).
    pub fn attach(&self, policy: &mut Ruleset) -> Result<(), AttachError> {
        policy.scorer = match &policy.model {
            Some(version) => super::Scorer(Some(self.get(version)?)),
            None => super::Scorer(None),
        };
        Ok(())
    }
}
