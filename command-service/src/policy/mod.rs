//! The policy on the command side: the live (and shadow) policy every
//! decision reads, kept current from the log on every replica, and the
//! admins' lifecycle commands (publish, promote, roll back, shadow).
//!
//! - `live`: the policy stream folded (`domain::policy::book`) and the
//!   active pair (live, shadow) behind one `Arc`, swapped whole: a request
//!   takes one snapshot, so it is never decided half by one policy and half
//!   by another. The log follower (`crate::peers::Follower`) folds new
//!   policy events in, so every replica switches within a second or two;
//!   The `model` stream is folded beside it (`domain::model::ModelBook`),
//!   and each policy gets the model it names attached when it is built;
//! - `drift`: the live model's feature and score drift, counted per
//!   decision without a lock; `publisher`: the task publishing it as gauges;
//! - `commands`: the lifecycle through the command pipeline (optimistic
//!   concurrency on the `policy` stream), and the policy the service
//!   publishes from its configuration at start.

pub mod commands;
pub mod drift;
pub mod live;
pub mod publisher;

pub use live::{ActivePolicy, LivePolicy};
