//! The GraphQL objects that refer to one another (a customer's alerts and
//! transactions, an alert's customer and transaction, a transaction's
//! customer and alerts), declared here, in a leaf, so the files that
//! resolve them (`customer`, `alert`, `transaction`, each holding its
//! type's `#[Object] impl`) import this module and not each other.

use crate::error::bad_input;
use domain::ids::CustomerId;
use read_models::alerts::AlertRow;
use read_models::profiles::ProfileRow;
use read_models::transactions::TransactionRow;
use std::sync::Arc;

/// A customer: what the read models know, and its stream in the log.
pub struct Customer {
    pub(crate) id: String,
    /// The profile when the caller already loaded it.
    pub(crate) profile: Option<Option<Arc<ProfileRow>>>,
}

impl Customer {
    /// A customer some row names (an alert, a transaction).
    pub fn known(id: String) -> Customer {
        Customer { id, profile: None }
    }

    pub(crate) fn stream(&self) -> async_graphql::Result<String> {
        let id = CustomerId::parse(&self.id).map_err(|e| bad_input(e.to_string()))?;
        Ok(domain::streams::customer(&id))
    }
}

/// An alert raised by a transaction, and where it is in its lifecycle.
#[derive(Clone)]
pub struct Alert(pub Arc<AlertRow>);

/// A decided transaction.
#[derive(Clone)]
pub struct Transaction(pub Arc<TransactionRow>);
