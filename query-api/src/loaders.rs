//! Batched look-ups (DataLoader): every resolver that needs a row by key
//! asks the request's [`Loader`], which gathers the keys asked for in the
//! same tick and answers them with one `= ANY($1)` statement per kind. A
//! page of 100 alerts with their customers' profiles and their transactions
//! costs one statement per kind of row, not one per row. Each request gets
//! its own loader (created with its [`Db`]), whose cache lives as long as
//! the request. The rows and the queries are the read-model contract's
//! (`read_models`), so this file depends on nothing else of the crate but
//! the pool.

use crate::db::Db;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use domain::peers::PeerCounts;
use read_models::alerts::{ALERTS_BY_ID, ALERTS_BY_TRANSACTION, AlertRow};
use read_models::geo::{GEO_BY_ID, GeoRow};
use read_models::merchants::{
    PEER_COUNTS_OF_CATEGORIES, PEER_COUNTS_OF_MERCHANTS, PeerWindowRow, day_date, peer_counts,
    window_days,
};
use read_models::profiles::{PROFILES_BY_ID, ProfileRow};
use read_models::transactions::{
    LABELS_BY_TRANSACTION, LabelRow, TRANSACTIONS_BY_ID, TransactionRow,
};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// The request's loader.
pub type Loader = DataLoader<ReadModels, HashMapCache>;

pub fn loader(db: Db) -> Loader {
    DataLoader::with_cache(ReadModels { db }, tokio::spawn, HashMapCache::default())
}

/// The read models, by key.
pub struct ReadModels {
    db: Db,
}

/// A customer's profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileKey(pub String);
/// A customer's geo state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeoKey(pub String);
/// A transaction by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey(pub String);
/// A transaction's latest label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelKey(pub String);
/// An alert by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey(pub Uuid);
/// The alerts a transaction raised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertsOfTransaction(pub String);

/// A merchant's or a category's label counts over the windows before a
/// UTC day (a `domain::peers::day_of` day number).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub of: PeerOf,
    pub id: String,
    pub day: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerOf {
    Merchant,
    Category,
}

type Failed = Arc<sqlx::Error>;

fn texts<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<String> {
    keys.cloned().collect()
}

impl async_graphql::dataloader::Loader<ProfileKey> for ReadModels {
    type Value = Arc<ProfileRow>;
    type Error = Failed;

    async fn load(
        &self,
        keys: &[ProfileKey],
    ) -> Result<HashMap<ProfileKey, Arc<ProfileRow>>, Failed> {
        let rows: Vec<ProfileRow> = sqlx::query_as(PROFILES_BY_ID)
            .bind(texts(keys.iter().map(|k| &k.0)))
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (ProfileKey(r.customer_id.clone()), Arc::new(r)))
            .collect())
    }
}

impl async_graphql::dataloader::Loader<GeoKey> for ReadModels {
    type Value = Arc<GeoRow>;
    type Error = Failed;

    async fn load(&self, keys: &[GeoKey]) -> Result<HashMap<GeoKey, Arc<GeoRow>>, Failed> {
        let rows: Vec<GeoRow> = sqlx::query_as(GEO_BY_ID)
            .bind(texts(keys.iter().map(|k| &k.0)))
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (GeoKey(r.customer_id.clone()), Arc::new(r)))
            .collect())
    }
}

impl async_graphql::dataloader::Loader<TransactionKey> for ReadModels {
    type Value = Arc<TransactionRow>;
    type Error = Failed;

    async fn load(
        &self,
        keys: &[TransactionKey],
    ) -> Result<HashMap<TransactionKey, Arc<TransactionRow>>, Failed> {
        let rows: Vec<TransactionRow> = sqlx::query_as(TRANSACTIONS_BY_ID)
            .bind(texts(keys.iter().map(|k| &k.0)))
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (TransactionKey(r.transaction_id.clone()), Arc::new(r)))
            .collect())
    }
}

impl async_graphql::dataloader::Loader<LabelKey> for ReadModels {
    type Value = Arc<LabelRow>;
    type Error = Failed;

    async fn load(&self, keys: &[LabelKey]) -> Result<HashMap<LabelKey, Arc<LabelRow>>, Failed> {
        let rows: Vec<LabelRow> = sqlx::query_as(LABELS_BY_TRANSACTION)
            .bind(texts(keys.iter().map(|k| &k.0)))
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (LabelKey(r.transaction_id.clone()), Arc::new(r)))
            .collect())
    }
}

impl async_graphql::dataloader::Loader<AlertKey> for ReadModels {
    type Value = Arc<AlertRow>;
    type Error = Failed;

    async fn load(&self, keys: &[AlertKey]) -> Result<HashMap<AlertKey, Arc<AlertRow>>, Failed> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows: Vec<AlertRow> = sqlx::query_as(ALERTS_BY_ID)
            .bind(ids)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (AlertKey(r.alert_id), Arc::new(r)))
            .collect())
    }
}

impl async_graphql::dataloader::Loader<AlertsOfTransaction> for ReadModels {
    type Value = Arc<Vec<Arc<AlertRow>>>;
    type Error = Failed;

    async fn load(
        &self,
        keys: &[AlertsOfTransaction],
    ) -> Result<HashMap<AlertsOfTransaction, Arc<Vec<Arc<AlertRow>>>>, Failed> {
        let rows: Vec<AlertRow> = sqlx::query_as(ALERTS_BY_TRANSACTION)
            .bind(texts(keys.iter().map(|k| &k.0)))
            .fetch_all(self.db.pool())
            .await?;
        let mut by: HashMap<AlertsOfTransaction, Vec<Arc<AlertRow>>> = HashMap::new();
        for r in rows {
            by.entry(AlertsOfTransaction(r.transaction_id.clone()))
                .or_default()
                .push(Arc::new(r));
        }
        Ok(by.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl async_graphql::dataloader::Loader<PeerKey> for ReadModels {
    type Value = PeerCounts;
    type Error = Failed;

    /// One statement per kind and day asked (a page of merchants as of one
    /// time is one statement).
    async fn load(&self, keys: &[PeerKey]) -> Result<HashMap<PeerKey, PeerCounts>, Failed> {
        let mut asked: HashMap<(PeerOf, i32), Vec<String>> = HashMap::new();
        for k in keys {
            asked.entry((k.of, k.day)).or_default().push(k.id.clone());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((of, day), ids) in asked {
            let query = match of {
                PeerOf::Merchant => PEER_COUNTS_OF_MERCHANTS,
                PeerOf::Category => PEER_COUNTS_OF_CATEGORIES,
            };
            let rows: Vec<PeerWindowRow> = sqlx::query_as(query)
                .bind(&ids)
                .bind(day_date(day))
                .bind(window_days())
                .fetch_all(self.db.pool())
                .await?;
            out.extend(
                peer_counts(rows)
                    .into_iter()
                    .map(|(id, counts)| (PeerKey { of, id, day }, counts)),
            );
        }
        Ok(out)
    }
}
