//! Payload parsing: untrusted JSON in, valid domain values or a full list of
//! `FieldError`s out. Nothing here panics on any input.

mod analyst;
mod errors;
mod fields;
mod transaction;

pub use analyst::{
    LabelItem, parse_acknowledgement, parse_label, parse_label_item, parse_resolution,
};
pub use errors::{FieldError, FieldReason, WHOLE_BODY};
pub use transaction::{ParseContext, customer_named, parse_transaction};
