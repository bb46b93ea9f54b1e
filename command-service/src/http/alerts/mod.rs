//! The alert lifecycle routes: an analyst acknowledges an alert (`POST
//! /v1/alerts/{id}/acknowledgement`) and resolves it with a verdict (`POST
//! /v1/alerts/{id}/resolution`), each appending one event to the alert's
//! stream `alert-{id}`. What counts as a repeat (200) or a conflict (409)
//! is decided by `domain::alert`, carried out by `crate::commands::alerts`.
//!
//! - `acknowledgement`, `resolution`: the handlers;
//! - `answers`: what they answer;
//! - `request`: what both do around the command: the alert id from the
//!   path, the body parsed or refused (quarantined), and the outcome as an
//!   answer or a problem.

pub mod acknowledgement;
pub mod answers;
mod request;
pub mod resolution;

pub use acknowledgement::post_acknowledgement;
pub use answers::{AcknowledgementAnswer, ResolutionAnswer};
pub use resolution::post_resolution;
