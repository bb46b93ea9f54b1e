//! Erasing a customer's personal data (the right to erasure; docs/trust.md,
//! ADR 0021): destroy their data key, then record `PersonalDataErased` in
//! `customer-{id}`. Every IP address and user agent of theirs in the log is
//! ciphertext under that key, so destroying it erases them everywhere the
//! log was copied, without touching a chained byte; decisions, amounts,
//! alerts and device fingerprints stay.
//!
//! Idempotent: a second erasure finds the key gone and records the same
//! event again, which the log stores once (its id is derived from the
//! customer, the key generation and when it was destroyed). The key goes
//! first: if recording the event fails, asking again completes it.

use crate::commands::events::new_event;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::events::PersonalDataErased;
use domain::ids::CustomerId;
use event_store::postgres::keys::KeyRing;
use event_store::{AppendError, EventMetadata, EventStore, ExpectedVersion};
use uuid::Uuid;

/// Names erasure events (UUID v5 of customer, generation and time).
const ERASURE_NAMESPACE: Uuid = Uuid::from_u128(0x5e47_1e1e_0000_4000_8000_0000_0000_0021);

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub key_generation: u32,
    pub erased_at: DateTime<Utc>,
    /// An earlier call had erased it already.
    pub already: bool,
}

/// Why it was not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureError {
    /// No transaction (and no key) of this customer was ever recorded.
    UnknownCustomer,
    /// The store failed; the text is for the logs. Safe to retry.
    Store(String),
}

/// Erases `customer`'s personal data, recording that `by` asked.
pub async fn erase(
    store: &dyn EventStore,
    keys: &KeyRing,
    customer: &CustomerId,
    by: &str,
    metadata: EventMetadata,
) -> Result<Erased, ErasureError> {
    let failed = |e: &dyn std::fmt::Display| ErasureError::Store(e.to_string());
    let stream = domain::streams::customer(customer);
    let known = keys
        .known(customer.as_str())
        .await
        .map_err(|e| failed(&e))?
        || !store
            .read_stream(&stream, 0, 1)
            .await
            .map_err(|e| failed(&e))?
            .is_empty();
    if !known {
        return Err(ErasureError::UnknownCustomer);
    }
    let erasure = keys
        .erase(customer.as_str())
        .await
        .map_err(|e| failed(&e))?;
    let event = DomainEvent::from(PersonalDataErased {
        customer_id: customer.clone(),
        key_generation: erasure.generation,
        erased_by: by.to_owned(),
    });
    let id = Uuid::new_v5(
        &ERASURE_NAMESPACE,
        format!(
            "{}/{}/{}",
            customer.as_str(),
            erasure.generation,
            erasure.erased_at.timestamp_micros()
        )
        .as_bytes(),
    );
    let new = new_event(&event, erasure.erased_at, metadata)
        .map_err(|e| failed(&e))?
        .with_id(id);
    match store.append(&stream, ExpectedVersion::Any, vec![new]).await {
        // Recorded now, or by an earlier call (the same id; a different
        // admin asking again makes the same id with another name in it).
        Ok(_) | Err(AppendError::EventIdConflict { .. }) => Ok(Erased {
            key_generation: erasure.generation,
            erased_at: erasure.erased_at,
            already: erasure.already,
        }),
        Err(e) => Err(failed(&e)),
    }
}
