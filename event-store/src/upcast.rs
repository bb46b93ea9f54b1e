//! Upcasting: old schema versions of an event type are turned into today's
//! shape on read. The log itself is never rewritten.

use crate::model::RecordedEvent;
use crate::payload::Payload;
use std::collections::HashMap;
use std::sync::Arc;

/// Turns the payload of `(event_type, version)` into version + 1.
pub type UpcastFn =
    Arc<dyn Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync>;

/// The registered upcasters, keyed by event type and the version they read.
#[derive(Clone, Default)]
pub struct Upcasters {
    /// event type -> (version read -> step). Looked up by `&str` so the read
    /// path allocates nothing for events without upcasters.
    steps: HashMap<String, HashMap<u32, UpcastFn>>,
}

impl std::fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<_> = self
            .steps
            .iter()
            .flat_map(|(t, vs)| vs.keys().map(move |v| (t, v)))
            .collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that turns `event_type` at `from_version` into
    /// `from_version + 1`. Steps chain: v1 -> v2 -> v3.
    pub fn register<F>(mut self, event_type: &str, from_version: u32, step: F) -> Self
    where
        F: Fn(serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync + 'static,
    {
        self.steps
            .entry(event_type.to_owned())
            .or_default()
            .insert(from_version, Arc::new(step));
        self
    }

    /// Runs every step that applies to `event`, in order. On failure the
    /// event keeps its stored payload and version and carries the error.
    pub fn apply(&self, mut event: RecordedEvent) -> RecordedEvent {
        let Some(steps) = self.steps.get(event.event_type.as_str()) else {
            return event;
        };
        if !steps.contains_key(&event.schema_version) {
            return event;
        }
        // Only events that need a step pay for parsing.
        let mut payload = match event.payload.to_value() {
            Ok(v) => v,
            Err(e) => {
                event.upcast_error = Some(format!("payload is not JSON: {e}"));
                return event;
            }
        };
        let mut version = event.schema_version;
        while let Some(step) = steps.get(&version) {
            match step(payload) {
                Ok(next) => {
                    payload = next;
                    version += 1;
                }
                Err(message) => {
                    event.upcast_error = Some(format!(
                        "upcasting {} v{} failed: {message}",
                        event.event_type, version
                    ));
                    return event;
                }
            }
        }
        event.payload = Payload::from_value(&payload);
        event.schema_version = version;
        event
    }
}
