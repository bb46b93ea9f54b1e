//! The KurrentDB / EventStoreDB backend (cargo feature `esdb`), through the
//! official `kurrentdb` gRPC client.
//!
//! What lives where:
//! - here: [`EsdbEventStore`], connecting, and the [`EventStore`] impl;
//! - `envelope`: our envelope <-> a KurrentDB event (custom metadata,
//!   positions, timestamps), and what counts as a system event;
//! - `append`: one stream's append (validation, the idempotency pre-check,
//!   optimistic concurrency, reading back positions);
//! - `read`: `read_stream`, `read_all`, `head_position`;
//! - `subscription`: `subscribe_all` as a catch-up subscription to `$all`.
//!
//! How the contract maps onto KurrentDB:
//! - Global position = the event's log position in the transaction file
//!   (its prepare position; for gRPC appends commit = prepare per event).
//!   Unique and strictly increasing per event, even within one append; see
//!   `envelope` for why. Positions are byte offsets, so they have gaps.
//! - Gap-safe order: KurrentDB assigns log positions in its single writer, in
//!   commit order, and reads and subscriptions of `$all` only go up to the
//!   last indexed position, which advances in log order. A reader that has
//!   seen P never later sees a new event below P.
//! - Optimistic concurrency: `ExpectedVersion` maps to the client's
//!   `StreamState` (`Any`, `NoStream`, `StreamRevision(v)`), and a refusal
//!   carries the server's current revision.
//! - `$all` holds KurrentDB's own system events too (`$`-prefixed types and
//!   streams); every read path here skips them, and appends refuse `$`
//!   streams and event types.
//!
//! Not available on this backend:
//! - **Cross-stream atomicity of `append_batch`.** KurrentDB has no
//!   multi-stream transaction, so a batch is appended request by request, in
//!   order. Each request is still atomic (all its events or none) and
//!   idempotent, so a batch that failed half-way converges when retried as a
//!   whole: the requests already written answer as duplicates.
//! - A global event-id index: idempotency is checked within the stream only,
//!   over a bounded window (see `append`).
//!
//! TLS: `kurrentdb` 1.2 installs aws-lc-rs as the process-wide rustls crypto
//! provider when a client is created, unless one is installed already, so
//! [`EsdbEventStore::connect`] cannot hit rustls' "no process-level
//! CryptoProvider" panic. A binary that uses other rustls clients should
//! still install its provider at the top of `main` (see STACK.md).
//! In secure mode, reading `$all` needs a user allowed to (e.g. `admin`):
//! put the credentials in the connection string.

mod append;
mod envelope;
mod read;
mod subscription;

use crate::error::{AppendError, StoreError};
use crate::model::{AppendOutcome, AppendRequest, Position, RecordedEvent, StreamVersion};
use crate::store::{EventStore, EventSubscription};
use crate::upcast::Upcasters;
use kurrentdb::{Client, ClientSettings};
use std::sync::Arc;

/// How many of a stream's stored events an append's idempotency check
/// looks at (or the size of the append, if larger); see `append`.
pub const IDEMPOTENCY_WINDOW: usize = 1000;

/// The event log in KurrentDB. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct EsdbEventStore {
    client: Client,
    upcasters: Arc<Upcasters>,
    /// Crypto-shredding's data keys: KurrentDB cannot destroy one event's
    /// field, so the keys live in PostgreSQL beside the read models.
    keys: Option<Arc<crate::postgres::keys::KeyRing>>,
}

impl std::fmt::Debug for EsdbEventStore {
    // The client settings may hold credentials: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsdbEventStore")
            .field("upcasters", &self.upcasters)
            .finish_non_exhaustive()
    }
}

impl EsdbEventStore {
    /// Connects to the server at `url` (e.g. `esdb://localhost:2113?tls=false`
    /// or `kurrentdb://admin:changeit@host:2113`) and checks that it answers.
    /// Needs a tokio runtime.
    pub async fn connect(url: &str, upcasters: Upcasters) -> Result<Self, StoreError> {
        // Errors leave the URL out: it may carry a password.
        let settings: ClientSettings = url.parse().map_err(|e| {
            StoreError::Backend(format!("invalid KurrentDB connection string: {e}"))
        })?;
        let client = Client::new(settings)
            .map_err(|e| StoreError::Backend(format!("cannot create a KurrentDB client: {e}")))?;
        client
            .server_info()
            .await
            .map_err(|e| backend_error("connect", &e))?;
        Ok(Self::from_client(client, upcasters))
    }

    /// A store over an existing client (no round trip).
    pub fn from_client(client: Client, upcasters: Upcasters) -> Self {
        EsdbEventStore {
            client,
            upcasters: Arc::new(upcasters),
            keys: None,
        }
    }

    /// This store with the key ring services seal personal fields with.
    pub fn with_key_ring(mut self, keys: Arc<crate::postgres::keys::KeyRing>) -> Self {
        self.keys = Some(keys);
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait::async_trait]
impl EventStore for EsdbEventStore {
    /// Appends each request in order, each atomically and idempotently (see
    /// the module docs: no cross-stream atomicity on KurrentDB). A request's
    /// failure is its own result. The whole call is an `Err` only when no
    /// KurrentDB node can be reached before anything of the batch was
    /// written; once that happens later in a batch, the remaining requests
    /// fail with that error without being tried.
    async fn append_batch(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Result<AppendOutcome, AppendError>>, StoreError> {
        let mut results = Vec::with_capacity(requests.len());
        let mut maybe_written = false;
        let mut unreachable: Option<StoreError> = None;
        for request in &requests {
            if let Some(error) = &unreachable {
                results.push(Err(AppendError::Store(error.clone())));
                continue;
            }
            match append::append_one(&self.client, request).await {
                Ok(outcome) => {
                    maybe_written |= !outcome.duplicate;
                    results.push(Ok(outcome));
                }
                Err(failure) => {
                    if failure.unreachable
                        && let AppendError::Store(error) = &failure.error
                    {
                        if !maybe_written {
                            return Err(error.clone());
                        }
                        unreachable = Some(error.clone());
                    }
                    maybe_written |= failure.maybe_written;
                    results.push(Err(failure.error));
                }
            }
        }
        Ok(results)
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_stream(
            &self.client,
            &self.upcasters,
            stream_id,
            from_version,
            limit,
        )
        .await
    }

    /// KurrentDB has no multi-stream read: the streams are read one after
    /// another (a concurrent version did not compile with the trait's
    /// lifetimes; worth another try).
    async fn read_streams(
        &self,
        streams: &[(&str, StreamVersion)],
        limit_per_stream: usize,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        let mut out = Vec::with_capacity(streams.len());
        for (stream_id, from_version) in streams {
            out.push(
                read::read_stream(
                    &self.client,
                    &self.upcasters,
                    stream_id,
                    *from_version,
                    limit_per_stream,
                )
                .await?,
            );
        }
        Ok(out)
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(&self.client, &self.upcasters, after, limit).await
    }

    async fn head_position(&self) -> Result<Position, StoreError> {
        read::head_position(&self.client).await
    }

    async fn subscribe_all(&self, after: Position) -> Result<EventSubscription, StoreError> {
        subscription::subscribe(&self.client, self.upcasters.clone(), after).await
    }

    fn key_ring(&self) -> Result<Arc<crate::postgres::keys::KeyRing>, StoreError> {
        self.keys.clone().ok_or_else(|| {
            StoreError::Backend(
                "this KurrentDB store was opened without a key ring: open it with \
                 event_store::open, which keeps the data keys in PostgreSQL"
                    .into(),
            )
        })
    }
}

/// A client error as a store error, saying which operation failed.
fn backend_error(operation: &str, error: &kurrentdb::Error) -> StoreError {
    StoreError::Backend(format!("KurrentDB {operation}: {error}"))
}

/// No node could be reached at all: the request was never sent.
fn is_unreachable(error: &kurrentdb::Error) -> bool {
    matches!(
        error,
        kurrentdb::Error::ConnectionClosed | kurrentdb::Error::GrpcConnectionError(_)
    )
}
