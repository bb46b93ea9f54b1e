//! Behaviour of the domain crate through its public API, given/when/then.
//! One test binary (one link) with a module per subject.

mod support;

mod alert_follow_up;
mod alert_lifecycle;
mod amount_above_usual;
mod amount_anomaly;
mod card_testing;
mod distinct_cities;
mod events;
mod features;
mod impossible_travel;
mod ingest;
mod ingest_fuzz;
mod labels;
mod late_events;
mod model;
mod new_category;
mod new_country;
mod new_device;
mod policy;
mod reference_ruleset;
mod ruleset_file;
mod scoring;
mod unusual_hour;
mod velocity_amount;
mod velocity_count;
mod withdrawal_sequence;
