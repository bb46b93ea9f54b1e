//! The key ring of crypto-shredding (docs/trust.md, ADR 0021): each
//! customer's data key, wrapped by the master key, in `customer_keys`
//! beside the log, and a bounded in-memory cache of unwrapped keys for the
//! ingest's hot path.
//!
//! - [`KeyRing::keys_for`] gives the data keys of many customers, creating
//!   the missing ones, in **two statements** for every cache miss of a
//!   batch (never one per transaction): read the existing keys, then
//!   create keys only for the customers who have none. Customers are sorted so concurrent
//!   batches lock rows in the same order. A caller that knows which
//!   customers are new (their streams are empty) says so
//!   ([`KeyRing::keys_for_hinted`]): their keys are created without the
//!   read, beside the read of the others'.
//! - [`KeyRing::lookup`] only reads (the query side shows personal fields
//!   with it): no key is created, nothing is cached, so an erasure shows at
//!   once.
//! - [`KeyRing::erase`] destroys a customer's key (`wrapped_key` set to
//!   NULL): every ciphertext under it is unreadable from then on. A
//!   customer who transacts again gets a new key (generation + 1).
//!
//! Cached keys are re-read after `ttl`, so a key erased through another
//! replica stops being used there within that time (and anything it sealed
//! meanwhile is unreadable too: the key is gone).

use crate::error::StoreError;
use crate::trust::shred::{DataKey, MasterKey};
use chrono::{DateTime, Utc};
use lru::LruCache;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The data key that seals quarantined input whose customer cannot be read
/// (malformed JSON, a bad `user_id`): never a valid customer id, so never
/// erased by a customer's erasure (docs/trust.md).
pub const QUARANTINE_KEY: &str = "";

/// How many times `keys_for` re-reads customers another process created
/// between its snapshot and its insert.
const ATTEMPTS: usize = 3;

/// Tuning of the key ring.
#[derive(Debug, Clone)]
pub struct KeyRingOptions {
    /// Unwrapped data keys kept in memory.
    pub cache: usize,
    /// How long a cached key is used before it is read again.
    pub ttl: Duration,
}

impl Default for KeyRingOptions {
    fn default() -> Self {
        KeyRingOptions {
            cache: 100_000,
            ttl: Duration::from_secs(60),
        }
    }
}

/// What is known of a customer's key.
#[derive(Debug, Clone)]
pub enum KeyState {
    /// The key in use.
    Active(Arc<DataKey>),
    /// Destroyed: what it sealed is gone. `generation` is the newest key
    /// the customer had.
    Erased {
        generation: u32,
        erased_at: DateTime<Utc>,
    },
}

/// The outcome of an erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The generation destroyed (0: the customer never had a key; only
    /// plaintext from before crypto-shredding, if anything).
    pub generation: u32,
    pub erased_at: DateTime<Utc>,
    /// The key was destroyed by an earlier call.
    pub already: bool,
}

struct Cached {
    key: Arc<DataKey>,
    at: Instant,
}

/// Data keys in PostgreSQL, wrapped by the master key.
pub struct KeyRing {
    pool: PgPool,
    master: Arc<MasterKey>,
    /// The master key being rotated out, if any.
    previous: Option<Arc<MasterKey>>,
    cache: Mutex<LruCache<String, Cached>>,
    ttl: Duration,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("master", &self.master)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The master key the environment configures (`SENTINEL_MASTER_KEY`,
/// `..._FILE`, else the development key in `.sentinel/keys`, generated
/// with a warning): one home for every backend's key ring.
pub fn configured_master() -> Result<Arc<MasterKey>, StoreError> {
    let secret = settings::keys::load_or_generate(&crate::trust::shred::MASTER_KEY)
        .map_err(|e| StoreError::Backend(format!("{e:#}")))?;
    let master = MasterKey::new(&secret);
    tracing::info!(
        key_id = %master.key_id,
        source = %secret.source,
        "sealing personal fields with per-customer data keys (crypto-shredding)"
    );
    Ok(Arc::new(master))
}

/// The master key being rotated out, when `SENTINEL_PREVIOUS_MASTER_KEY`
/// (or `..._FILE`) is set: see [`KeyRing::with_previous`].
pub fn configured_previous_master() -> Result<Option<Arc<MasterKey>>, StoreError> {
    let secret = settings::keys::load(&crate::trust::shred::PREVIOUS_MASTER_KEY)
        .map_err(|e| StoreError::Backend(format!("{e:#}")))?;
    Ok(secret.map(|secret| {
        let previous = MasterKey::new(&secret);
        tracing::info!(
            key_id = %previous.key_id,
            source = %secret.source,
            "a previous master key is configured: data keys it wrapped still unwrap \
             (rotation in progress; `fraudctl keys rewrap` finishes it)"
        );
        Arc::new(previous)
    }))
}

/// What [`KeyRing::rewrap`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Data keys now wrapped by the current master key instead.
    pub keys: u64,
    /// Erased customers' rows (no key left to wrap) relabelled with the
    /// current master key's id, so nothing names the old one.
    pub erased: u64,
    /// Rows wrapped by some third master key, left as they are.
    pub other: u64,
}

impl KeyRing {
    pub fn new(pool: PgPool, master: Arc<MasterKey>, options: KeyRingOptions) -> KeyRing {
        let capacity = NonZeroUsize::new(options.cache.max(1)).unwrap_or(NonZeroUsize::MIN);
        KeyRing {
            pool,
            master,
            previous: None,
            cache: Mutex::new(LruCache::new(capacity)),
            ttl: options.ttl,
        }
    }

    /// A ring that also unwraps data keys wrapped by `previous` (the master
    /// key being rotated out): services restarted with the new master key
    /// and the old one as previous keep reading every key while
    /// [`KeyRing::rewrap`] moves them over. New keys are always wrapped by
    /// the current master key.
    pub fn with_previous(mut self, previous: Option<Arc<MasterKey>>) -> KeyRing {
        self.previous = previous.filter(|p| p.key_id != self.master.key_id);
        self
    }

    /// The master key's id (logged at start; never the key).
    pub fn master_key_id(&self) -> &str {
        &self.master.key_id
    }

    /// The active data key of `customer`, created if it has none.
    pub async fn key_for(&self, customer: &str) -> Result<Arc<DataKey>, StoreError> {
        let mut keys = self.keys_for(&[customer]).await?;
        keys.remove(customer)
            .ok_or_else(|| StoreError::Backend(format!("no data key for customer {customer}")))
    }

    /// The active data keys of `customers`, creating the missing ones: the
    /// cache first, then one read for all the misses, then one write that
    /// creates keys for the customers who still have none.
    pub async fn keys_for(
        &self,
        customers: &[&str],
    ) -> Result<HashMap<String, Arc<DataKey>>, StoreError> {
        self.keys_for_hinted(customers, |_| false).await
    }

    /// [`KeyRing::keys_for`], told which customers are most likely new
    /// (`fresh`: the caller found their streams empty). Their keys are
    /// created at once with a plain insert, without the read that would
    /// find nothing, while the others' keys are read beside it: a first
    /// transaction costs one cheap statement instead of a read and an
    /// upsert. A wrong guess costs one more round, never a wrong key: if
    /// any of them has a row (made by another process, for refused input,
    /// or erased), the insert fails whole and the next rounds read or
    /// upsert them.
    pub async fn keys_for_hinted(
        &self,
        customers: &[&str],
        fresh: impl Fn(&str) -> bool,
    ) -> Result<HashMap<String, Arc<DataKey>>, StoreError> {
        let mut found = HashMap::with_capacity(customers.len());
        let mut missing: Vec<&str> = Vec::new();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for &customer in customers {
                if found.contains_key(customer) {
                    continue;
                }
                match cache.get(customer) {
                    Some(c) if c.at.elapsed() < self.ttl => {
                        found.insert(customer.to_owned(), c.key.clone());
                    }
                    _ => missing.push(customer),
                }
            }
        }
        missing.sort_unstable();
        missing.dedup();
        missing.retain(|c| !found.contains_key(*c));
        if missing.is_empty() {
            return Ok(found);
        }
        let (new, known): (Vec<&str>, Vec<&str>) = missing.iter().partition(|c| fresh(c));
        if !new.is_empty() {
            let read = async {
                if known.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.fetch_existing(&known).await
                }
            };
            let (created, existing) = tokio::try_join!(self.create_fresh(&new), read)?;
            self.remember(created, &mut found);
            self.remember(existing, &mut found);
            missing.retain(|c| !found.contains_key(*c));
            if missing.is_empty() {
                return Ok(found);
            }
        }
        // Most misses are customers who already have a key (evicted from
        // the cache, or another replica's): read those first, without
        // generating and wrapping keys that would only be thrown away; then
        // create keys for the rest. A key another process creates between
        // the two is read on the next round.
        for _ in 0..ATTEMPTS {
            let existing = self.fetch_existing(&missing).await?;
            self.remember(existing, &mut found);
            missing.retain(|c| !found.contains_key(*c));
            if missing.is_empty() {
                break;
            }
            let created = self.create(&missing).await?;
            self.remember(created, &mut found);
            missing.retain(|c| !found.contains_key(*c));
            if missing.is_empty() {
                break;
            }
        }
        if let Some(customer) = missing.first() {
            return Err(StoreError::Backend(format!(
                "could not create a data key for customer {customer}"
            )));
        }
        Ok(found)
    }

    /// Caches `fetched` and adds it to `found`.
    fn remember(&self, fetched: Vec<(String, DataKey)>, found: &mut HashMap<String, Arc<DataKey>>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for (customer, key) in fetched {
            let key = Arc::new(key);
            cache.put(
                customer.clone(),
                Cached {
                    key: key.clone(),
                    at: Instant::now(),
                },
            );
            found.insert(customer, key);
        }
    }

    /// The active keys of those of `customers` who have one (nothing is
    /// created).
    async fn fetch_existing(
        &self,
        customers: &[&str],
    ) -> Result<Vec<(String, DataKey)>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer_id, generation, wrapped_key FROM customer_keys \
             WHERE customer_id = ANY($1) AND wrapped_key IS NOT NULL",
        )
        .bind(customers)
        .fetch_all(&self.pool)
        .await?;
        self.unwrap_rows(&rows)
    }

    fn unwrap_rows(&self, rows: &[PgRow]) -> Result<Vec<(String, DataKey)>, StoreError> {
        rows.iter()
            .map(|row| {
                let customer: String = row.try_get("customer_id")?;
                let generation: i32 = row.try_get("generation")?;
                let wrapped: Vec<u8> = row.try_get("wrapped_key")?;
                let key = self.unwrap(&customer, &wrapped, generation)?;
                Ok((customer, key))
            })
            .collect()
    }

    /// One statement: insert a fresh wrapped key for each customer, or give
    /// an erased customer a new one. A customer whose active key another
    /// process created meanwhile is not returned (the caller reads it).
    async fn create(&self, customers: &[&str]) -> Result<Vec<(String, DataKey)>, StoreError> {
        let (keys, wrapped) = self.generate(customers)?;
        let mut fresh: HashMap<&str, DataKey> = customers.iter().copied().zip(keys).collect();
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "INSERT INTO customer_keys AS k (customer_id, generation, wrapped_key, master_key_id) \
             SELECT customer_id, 1, wrapped_key, $3 \
             FROM unnest($1::text[], $2::bytea[]) AS i(customer_id, wrapped_key) \
             ON CONFLICT (customer_id) DO UPDATE \
                 SET generation = k.generation + 1, wrapped_key = EXCLUDED.wrapped_key, \
                     master_key_id = EXCLUDED.master_key_id, created_at = now() \
                 WHERE k.wrapped_key IS NULL \
             RETURNING customer_id, generation",
        )
        .bind(customers)
        .bind(&wrapped)
        .bind(&self.master.key_id)
        .fetch_all(&self.pool)
        .await?;
        // What was stored is what was generated here: no need to unwrap it.
        Ok(rows
            .into_iter()
            .filter_map(|(customer, generation)| {
                let mut key = fresh.remove(customer.as_str())?;
                key.generation = generation.max(0) as u32;
                Some((customer, key))
            })
            .collect())
    }

    /// Keys for customers the caller believes have none: a plain INSERT,
    /// about a third cheaper for PostgreSQL than [`KeyRing::create`]'s
    /// upsert (no speculative insertion, no second WAL record per row). If
    /// any of them has a row after all, the statement inserts nothing and
    /// no customer is returned: the caller's next round reads or upserts
    /// them.
    async fn create_fresh(&self, customers: &[&str]) -> Result<Vec<(String, DataKey)>, StoreError> {
        let (keys, wrapped) = self.generate(customers)?;
        let inserted = sqlx::query(
            "INSERT INTO customer_keys (customer_id, generation, wrapped_key, master_key_id) \
             SELECT customer_id, 1, wrapped_key, $3 \
             FROM unnest($1::text[], $2::bytea[]) AS i(customer_id, wrapped_key)",
        )
        .bind(customers)
        .bind(&wrapped)
        .bind(&self.master.key_id)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(customers
                .iter()
                .map(|c| (*c).to_owned())
                .zip(keys)
                .collect()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// A fresh first-generation key for each of `customers`, and each
    /// wrapped by the current master key, in the same order.
    fn generate(&self, customers: &[&str]) -> Result<(Vec<DataKey>, Vec<Vec<u8>>), StoreError> {
        let backend = |e: crate::trust::shred::ShredError| StoreError::Backend(e.to_string());
        let mut keys = Vec::with_capacity(customers.len());
        let mut wrapped = Vec::with_capacity(customers.len());
        for &customer in customers {
            let key = DataKey::generate(1).map_err(backend)?;
            wrapped.push(self.master.wrap(customer, &key).map_err(backend)?);
            keys.push(key);
        }
        Ok((keys, wrapped))
    }

    fn unwrap(
        &self,
        customer: &str,
        wrapped: &[u8],
        generation: i32,
    ) -> Result<DataKey, StoreError> {
        let generation = generation.max(0) as u32;
        self.master
            .unwrap(customer, wrapped, generation)
            .or_else(|e| match &self.previous {
                Some(previous) => previous.unwrap(customer, wrapped, generation),
                None => Err(e),
            })
            .map_err(|_| {
                StoreError::Backend(format!(
                    "the data key of customer {customer} does not unwrap with master key {}: \
                     is SENTINEL_MASTER_KEY the one it was wrapped with?",
                    self.master.key_id
                ))
            })
    }

    /// What is known of each customer's key, read now (no cache, nothing
    /// created). Customers with no key row are absent.
    pub async fn lookup(
        &self,
        customers: &[&str],
    ) -> Result<HashMap<String, KeyState>, StoreError> {
        let rows = sqlx::query(
            "SELECT customer_id, generation, wrapped_key, erased_at FROM customer_keys \
             WHERE customer_id = ANY($1)",
        )
        .bind(customers)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let customer: String = row.try_get("customer_id")?;
            let generation: i32 = row.try_get("generation")?;
            let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
            let erased_at: Option<DateTime<Utc>> = row.try_get("erased_at")?;
            let state = match (wrapped, erased_at) {
                (Some(wrapped), _) => {
                    KeyState::Active(Arc::new(self.unwrap(&customer, &wrapped, generation)?))
                }
                (None, erased_at) => KeyState::Erased {
                    generation: generation.max(0) as u32,
                    erased_at: erased_at.unwrap_or_default(),
                },
            };
            out.insert(customer, state);
        }
        Ok(out)
    }

    /// Re-wraps every data key the previous master key wrapped under the
    /// current one, `page` rows per transaction (each row locked while it
    /// is rewritten, so an erasure meanwhile waits or wins; a run stopped
    /// half way resumes where it stopped: `master_key_id` says which rows
    /// are done). `progress(done)` is called after each page.
    pub async fn rewrap(
        &self,
        page: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<Rewrapped, StoreError> {
        let Some(previous) = &self.previous else {
            return Err(StoreError::Backend(
                "no previous master key: set SENTINEL_PREVIOUS_MASTER_KEY (or \
                 SENTINEL_PREVIOUS_MASTER_KEY_FILE) to the key being rotated out"
                    .into(),
            ));
        };
        let mut done = Rewrapped::default();
        loop {
            let mut tx = self.pool.begin().await?;
            let rows = sqlx::query(
                "SELECT customer_id, generation, wrapped_key FROM customer_keys \
                 WHERE master_key_id = $1 AND wrapped_key IS NOT NULL \
                 ORDER BY customer_id LIMIT $2 FOR UPDATE",
            )
            .bind(&previous.key_id)
            .bind(page.max(1) as i64)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                tx.commit().await?;
                break;
            }
            let mut customers = Vec::with_capacity(rows.len());
            let mut rewrapped = Vec::with_capacity(rows.len());
            for row in &rows {
                let customer: String = row.try_get("customer_id")?;
                let generation: i32 = row.try_get("generation")?;
                let wrapped: Vec<u8> = row.try_get("wrapped_key")?;
                let key = previous
                    .unwrap(&customer, &wrapped, generation.max(0) as u32)
                    .map_err(|_| {
                        StoreError::Backend(format!(
                            "the data key of customer {customer} is labelled with master key {} \
                             but does not unwrap with it",
                            previous.key_id
                        ))
                    })?;
                rewrapped.push(
                    self.master
                        .wrap(&customer, &key)
                        .map_err(|e| StoreError::Backend(e.to_string()))?,
                );
                customers.push(customer);
            }
            sqlx::query(
                "UPDATE customer_keys AS k SET wrapped_key = u.wrapped_key, master_key_id = $3 \
                 FROM unnest($1::text[], $2::bytea[]) AS u(customer_id, wrapped_key) \
                 WHERE k.customer_id = u.customer_id",
            )
            .bind(&customers)
            .bind(&rewrapped)
            .bind(&self.master.key_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            done.keys += customers.len() as u64;
            progress(done.keys);
        }
        done.erased = sqlx::query(
            "UPDATE customer_keys SET master_key_id = $2 \
             WHERE master_key_id = $1 AND wrapped_key IS NULL",
        )
        .bind(&previous.key_id)
        .bind(&self.master.key_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let other: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM customer_keys \
             WHERE master_key_id <> $1 AND wrapped_key IS NOT NULL",
        )
        .bind(&self.master.key_id)
        .fetch_one(&self.pool)
        .await?;
        done.other = other.max(0) as u64;
        // Cached keys are the same keys: nothing to drop.
        Ok(done)
    }

    /// How many data keys the previous master key still wraps (what a
    /// rewrap has left to do); 0 with no previous key.
    pub async fn left_to_rewrap(&self) -> Result<u64, StoreError> {
        let Some(previous) = &self.previous else {
            return Ok(0);
        };
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM customer_keys WHERE master_key_id = $1 AND wrapped_key IS NOT NULL",
        )
        .bind(&previous.key_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(left.max(0) as u64)
    }

    /// Destroys `customer`'s data key (idempotent: a second call reports
    /// the first erasure). A customer with no key yet gets an erased row,
    /// so its state reads as erased.
    pub async fn erase(&self, customer: &str) -> Result<Erasure, StoreError> {
        let row = sqlx::query(
            "INSERT INTO customer_keys AS k \
                 (customer_id, generation, wrapped_key, master_key_id, erased_at) \
             VALUES ($1, 0, NULL, $2, now()) \
             ON CONFLICT (customer_id) DO UPDATE \
                 SET wrapped_key = NULL, \
                     erased_at = CASE WHEN k.wrapped_key IS NULL THEN k.erased_at ELSE now() END \
             RETURNING generation, erased_at, erased_at <> now() AS already",
        )
        .bind(customer)
        .bind(&self.master.key_id)
        .fetch_one(&self.pool)
        .await?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop(customer);
        let generation: i32 = row.try_get("generation")?;
        Ok(Erasure {
            generation: generation.max(0) as u32,
            erased_at: row.try_get("erased_at")?,
            already: row.try_get("already")?,
        })
    }

    /// Whether `customer` has a key row (it transacted since
    /// crypto-shredding, or was erased).
    pub async fn known(&self, customer: &str) -> Result<bool, StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM customer_keys WHERE customer_id = $1")
                .bind(customer)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }
}
