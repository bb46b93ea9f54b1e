//! The ingest: turns a parsed transaction into a decision and the events
//! that record it, appended through the event store's group commit.
//!
//! Per transaction: take the customer's lock; make sure its state is loaded
//! (rebuilt from `customer-{id}` on a miss, through the batching [`loader`],
//! which reads every customer missed meanwhile in one query; a batch POST
//! loads all its missing customers up front with [`Ingest::preload`]); answer a repeat of a known
//! `transaction_id` from memory (or the stream, for old ones); otherwise
//! `decide`, append with the stream's expected version, and only then fold the
//! events into the state and answer. A version conflict (another replica
//! appended) reloads and decides again, so it never reaches the client.
//! That loop is the command side's one pipeline (`crate::commands::pipeline`);
//! what is the ingest's own is how a customer is loaded and kept.
//!
//! Each decision reads the live merchant and category counts
//! (`crate::peers`, stamped with the log position they were folded
//! through, which the decision records), and each recorded transaction's
//! position goes into the transaction directory right after its append, so
//! a label sent the moment the answer arrives finds its transaction.

pub mod answer;
pub mod customers;
pub mod loader;
pub mod personal;
pub mod quarantine;

use crate::commands::error::StoreFailure;
use crate::commands::events::{self, decode, new_event};
use crate::commands::pipeline::{self, CommandStream, Step};
use crate::peers::LivePeers;
use crate::policy::{ActivePolicy, LivePolicy};
use answer::Answer;
use customers::{Customer, Customers, Remembered};
use domain::events::{AlertRaised, TransactionRecorded, TransactionRepeated};
use domain::features::Features;
use domain::ids::{AlertId, TransactionId};
use domain::{
    CustomerState, DecisionIds, DomainEvent, PendingEvent, RecordTransaction, Transaction,
    decide_with_shadow,
};
use event_store::postgres::keys::KeyRing;
use event_store::{
    AppendOutcome, EventMetadata, EventStore, ExpectedVersion, RecordedEvent, StoreError,
    StreamVersion,
};
use loader::{Loader, LoaderOptions};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Names transaction fingerprints (UUID v5 of the transaction's JSON).
const FINGERPRINT_NAMESPACE: Uuid = Uuid::from_u128(0x5e47_1e1e_0000_4000_8000_0000_0000_0001);

/// How an accepted transaction was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Decided and recorded now, with the features it was decided on (not
    /// remembered for repeats: about 0.5 KiB each).
    Recorded(Answer, Box<Features>),
    /// A repeat of an earlier POST: the first answer, nothing appended.
    Repeated(Answer),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("transaction {0} was already recorded with a different payload")]
    Conflict(String),
    #[error("the ingest is at capacity; retry shortly")]
    Overloaded,
    #[error("the event store is unavailable: {0}")]
    Store(String),
}

/// Tuning of the ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Transactions being decided at once; past it, callers get 503.
    pub max_in_flight: usize,
    /// Customers whose state is kept in memory.
    pub customer_cache: usize,
    /// Most customer streams one batched cache-miss read asks for.
    pub load_batch: usize,
    /// Batched cache-miss reads in flight at once (each holds one pool
    /// connection; the rest of the pool stays free for the writer).
    pub concurrent_loads: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_in_flight: 20_000,
            customer_cache: 100_000,
            load_batch: 2_000,
            concurrent_loads: 2,
        }
    }
}

/// Who caused a request: carried into every event it appends.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The policies this request is decided with, taken once when it
    /// arrived (every transaction of a batch with the same); `None` takes
    /// them per transaction.
    pub policy: Option<Arc<ActivePolicy>>,
    pub correlation_id: Option<Uuid>,
    pub traceparent: Option<String>,
}

impl RequestMeta {
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: self.correlation_id,
            causation_id: None,
            traceparent: self.traceparent.clone(),
        }
    }
}

/// Room in flight taken by [`Ingest::admit`]; given back when dropped.
#[must_use = "the room is given back when the admission is dropped"]
pub struct Admission(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

pub struct Ingest {
    store: Arc<dyn EventStore>,
    /// Customers' data keys: personal fields are sealed with them first.
    keys: Arc<KeyRing>,
    policy: Arc<LivePolicy>,
    customers: Customers,
    peers: Arc<LivePeers>,
    loader: Loader,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
}

impl Ingest {
    /// Starts the loader task, so it needs a tokio runtime.
    pub fn new(
        store: Arc<dyn EventStore>,
        keys: Arc<KeyRing>,
        policy: Arc<LivePolicy>,
        peers: Arc<LivePeers>,
        options: IngestOptions,
    ) -> Self {
        let loader = Loader::start(
            store.clone(),
            LoaderOptions {
                max_streams: options.load_batch,
                concurrent_reads: options.concurrent_loads,
                // Each transaction in flight waits for at most one load, and
                // a preload holds permits for its customers: nobody ever
                // waits to be queued.
                queue: options.max_in_flight,
            },
        );
        Ingest {
            store,
            keys,
            policy,
            customers: Customers::new(options.customer_cache),
            peers,
            loader,
            permits: Arc::new(Semaphore::new(options.max_in_flight)),
            max_in_flight: options.max_in_flight,
        }
    }

    /// The policies a request decides with now.
    pub fn policy_now(&self) -> Arc<ActivePolicy> {
        self.policy.current()
    }

    /// The live policy's holder (for the lifecycle commands).
    pub fn live_policy(&self) -> &Arc<LivePolicy> {
        &self.policy
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The customers' data keys (erasure destroys them here).
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// Customers held in memory now.
    pub fn cached_customers(&self) -> usize {
        self.customers.len()
    }

    /// Loads, in one read, every customer of `txs` that is not cached, so a
    /// batch's transactions do not each miss on their own, and the data
    /// keys of those whose transactions carry personal fields. Best effort:
    /// a customer another request holds is left to it, a failed read leaves
    /// the customers unloaded (each transaction then loads its own and
    /// answers for itself). The caller holds an [`Admission`] for the
    /// batch, which covers the loads too.
    ///
    /// The streams are read first: a customer whose stream is empty is
    /// new, and the key ring creates its key without first reading for one
    /// (most of a new population's transactions are first ones), while the
    /// known customers' keys are read beside it.
    pub async fn preload<'a>(&self, txs: impl IntoIterator<Item = &'a Transaction>) {
        let mut seen = HashSet::new();
        let mut sealed: Vec<&str> = Vec::new();
        let mut held = Vec::new();
        let mut held_ids: Vec<&str> = Vec::new();
        let mut streams = Vec::new();
        for tx in txs {
            let id = &tx.customer_id;
            let first = seen.insert(id.as_str());
            if personal::has_personal(tx) {
                sealed.push(id.as_str());
            }
            if !first {
                continue;
            }
            let entry = self
                .customers
                .entry(id, || Customer::unloaded(self.fresh_state()));
            // Never wait for a lock while holding others: no deadlock.
            if let Ok(customer) = entry.try_lock_owned()
                && !customer.loaded
            {
                streams.push(domain::streams::customer(id));
                held.push(customer);
                held_ids.push(id.as_str());
            }
        }
        let pages = if held.is_empty() {
            None
        } else {
            match self.loader.load(streams.clone()).await {
                Ok(pages) if pages.len() == held.len() => Some(pages),
                Ok(pages) => {
                    tracing::warn!(
                        asked = held.len(),
                        answered = pages.len(),
                        "the store answered a multi-stream read with the wrong number of streams"
                    );
                    None
                }
                Err(error) => {
                    tracing::warn!(%error, "could not preload a batch's customers");
                    None
                }
            }
        };
        let fresh: HashSet<&str> = match &pages {
            Some(pages) => held_ids
                .iter()
                .zip(pages)
                .filter(|(_, page)| page.is_empty())
                .map(|(id, _)| *id)
                .collect(),
            None => HashSet::new(),
        };
        // Every data key the batch needs in one round (created for the new
        // customers), while the customers are filled from their pages.
        let keys = async {
            if sealed.is_empty() {
                return;
            }
            if let Err(error) = self
                .keys
                .keys_for_hinted(&sealed, |c| fresh.contains(c))
                .await
            {
                tracing::warn!(%error, "could not load a batch's data keys");
            }
        };
        let fills = async {
            let Some(pages) = pages else { return };
            for ((mut customer, stream), page) in held.into_iter().zip(&streams).zip(pages) {
                if let Err(error) = self.fill(&mut customer, stream, page).await {
                    tracing::warn!(%stream, %error, "could not preload a customer");
                }
            }
        };
        tokio::join!(keys, fills);
    }

    /// Room for `n` transactions in flight, all or none, held until the
    /// admission is dropped; past `max_in_flight` the caller is told to
    /// come back ([`IngestError::Overloaded`], a 503 with `Retry-After`),
    /// so a burst queues no more than that and memory stays bounded. A
    /// batch is admitted whole, so it is either taken or refused as one.
    pub fn admit(&self, n: usize) -> Result<Admission, IngestError> {
        let n = u32::try_from(n.max(1)).map_err(|_| IngestError::Overloaded)?;
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| {
                metrics::counter!("sentinel_ingest_overloaded_total").increment(u64::from(n));
                IngestError::Overloaded
            })?;
        let in_flight = self.max_in_flight - self.permits.available_permits();
        metrics::gauge!("sentinel_ingest_in_flight").set(in_flight as f64);
        Ok(Admission(permit))
    }

    /// Admits one transaction and records it.
    pub async fn record(
        &self,
        tx: Transaction,
        meta: &RequestMeta,
    ) -> Result<Outcome, IngestError> {
        let _admitted = self.admit(1)?;
        self.record_admitted(tx, meta).await
    }

    /// Records a transaction whose room in flight the caller holds (a
    /// batch's [`Admission`], taken for all its items at once).
    pub async fn record_admitted(
        &self,
        tx: Transaction,
        meta: &RequestMeta,
    ) -> Result<Outcome, IngestError> {
        let policy = meta.policy.clone().unwrap_or_else(|| self.policy.current());
        let tx = self.seal(tx).await?;
        let fingerprint = fingerprint(&tx);
        let stream = domain::streams::customer(&tx.customer_id);
        let entry = self
            .customers
            .entry(&tx.customer_id, || Customer::unloaded(self.fresh_state()));
        let mut customer = entry.lock().await;

        let mut deciding = Deciding {
            ingest: self,
            policy: &policy,
            customer: &mut customer,
            stream: &stream,
            tx: &tx,
            fingerprint,
            meta,
            pending: Vec::new(),
        };
        match pipeline::run(&*self.store, &mut deciding).await? {
            Decided::Recorded(answer, features) => {
                count_decision(&answer);
                if let (Some(drift), Some(score)) = (&policy.drift, answer.model_score) {
                    drift.observe(&features, score);
                }
                let remembered = Remembered {
                    fingerprint,
                    answer: answer.clone(),
                    at: tx.timestamp,
                };
                customer.remember(
                    tx.transaction_id.clone(),
                    remembered,
                    policy.live.history.max_transactions as usize,
                );
                Ok(Outcome::Recorded(answer, features))
            }
            Decided::Repeat(outcome) => {
                drop(customer);
                self.note_repeat(&tx, outcome.is_ok(), meta).await;
                outcome
            }
        }
    }

    /// `tx` with its personal fields sealed under its customer's data key
    /// (cached; a batch loaded them all in [`Ingest::preload`]).
    async fn seal(&self, tx: Transaction) -> Result<Transaction, IngestError> {
        if !personal::has_personal(&tx) {
            return Ok(tx);
        }
        let key = self
            .keys
            .key_for(tx.customer_id.as_str())
            .await
            .map_err(store_error)?;
        personal::seal_transaction(tx, &key)
            .map_err(|e| IngestError::Store(format!("sealing personal fields: {e}")))
    }

    /// Records that a transaction id came again (for the data-quality
    /// figures and the audit). Best effort: the repeat's answer does not
    /// depend on it, so a failure is logged, not returned.
    async fn note_repeat(&self, tx: &Transaction, same_payload: bool, meta: &RequestMeta) {
        let event = DomainEvent::TransactionRepeated(TransactionRepeated {
            transaction_id: tx.transaction_id.clone(),
            customer_id: tx.customer_id.clone(),
            same_payload,
        });
        let appended = match new_event(&event, chrono::Utc::now(), meta.metadata()) {
            Ok(new) => self
                .store
                .append(domain::streams::REPEATS, ExpectedVersion::Any, vec![new])
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        metrics::counter!("sentinel_repeats_total", "same_payload" => same_payload.to_string())
            .increment(1);
        if let Err(error) = appended {
            tracing::warn!(transaction_id = %tx.transaction_id, %error, "could not record a repeat");
        }
    }

    fn fresh_state(&self) -> CustomerState {
        CustomerState::for_ruleset(&self.policy.current().live)
    }

    /// A repeat of a known transaction id: the first answer, or a conflict.
    async fn repeat_of(
        &self,
        customer: &Customer,
        stream: &str,
        tx: &Transaction,
        fingerprint: Uuid,
    ) -> Result<Option<Result<Outcome, IngestError>>, IngestError> {
        let known = match customer.answer(&tx.transaction_id) {
            Some(r) => Some(r.clone()),
            None => {
                let forgotten = customer
                    .forgotten_before()
                    .is_some_and(|before| tx.timestamp < before);
                if forgotten {
                    self.find_in_stream(stream, &tx.transaction_id).await?
                } else {
                    None
                }
            }
        };
        Ok(known.map(|r| {
            if r.fingerprint == fingerprint {
                Ok(Outcome::Repeated(r.answer))
            } else {
                Err(IngestError::Conflict(tx.transaction_id.as_str().to_owned()))
            }
        }))
    }

    /// Rebuilds a customer from its stream: state, version, recent answers.
    /// The read is shared with every other miss waiting at the same time.
    async fn load(&self, customer: &mut Customer, stream: &str) -> Result<(), IngestError> {
        let page = self
            .loader
            .load(vec![stream.to_owned()])
            .await
            .map_err(store_error)?
            .pop()
            .ok_or_else(|| IngestError::Store("the store answered no stream".into()))?;
        self.fill(customer, stream, page).await
    }

    /// Rebuilds a customer from the first [`loader::PAGE`] events of its
    /// stream, reading on if there are more.
    async fn fill(
        &self,
        customer: &mut Customer,
        stream: &str,
        first: Vec<RecordedEvent>,
    ) -> Result<(), IngestError> {
        customer.reset(self.fresh_state());
        let mut version = first.last().map(|e| e.stream_version);
        let mut events: Vec<DomainEvent> = first.iter().filter_map(decode).collect();
        if first.len() >= loader::PAGE
            && let Some(v) = version
        {
            let (rest, last) = self.read_from(stream, v + 1).await?;
            events.extend(rest);
            version = last.or(version);
        }
        let mut answers = Answers::default();
        for e in events {
            customer.state.apply(&e);
            answers.add(e);
        }
        customer.version = version;
        let max = self.policy.current().live.history.max_transactions as usize;
        for (id, remembered) in answers.finish() {
            customer.remember(id, remembered, max);
        }
        customer.loaded = true;
        Ok(())
    }

    /// Looks for a transaction older than what is remembered.
    async fn find_in_stream(
        &self,
        stream: &str,
        id: &TransactionId,
    ) -> Result<Option<Remembered>, IngestError> {
        let (events, _) = self.read_whole(stream).await?;
        let mut answers = Answers::default();
        for e in events {
            answers.add_if(e, id);
        }
        Ok(answers
            .finish()
            .into_iter()
            .find(|(t, _)| t == id)
            .map(|(_, r)| r))
    }

    /// Every readable event of a stream, in order, and its last version.
    async fn read_whole(
        &self,
        stream: &str,
    ) -> Result<(Vec<DomainEvent>, Option<StreamVersion>), IngestError> {
        self.read_from(stream, 0).await
    }

    /// The readable events of a stream from `from` on, and its last version
    /// (`None` if there was nothing from there).
    async fn read_from(
        &self,
        stream: &str,
        from: StreamVersion,
    ) -> Result<(Vec<DomainEvent>, Option<StreamVersion>), IngestError> {
        let (events, version) = events::read_from(&*self.store, stream, from)
            .await
            .map_err(store_error)?;
        Ok((events.into_iter().map(|(e, _)| e).collect(), version))
    }
}

fn store_error(e: StoreError) -> IngestError {
    IngestError::Store(e.to_string())
}

impl From<StoreFailure> for IngestError {
    fn from(failure: StoreFailure) -> Self {
        IngestError::Store(failure.0)
    }
}

/// One transaction through the command pipeline. The customer's state is
/// the cache's, loaded only on a miss (through the batching loader), and a
/// repeat of a known transaction id is answered from it; a version
/// conflict resets it, so the next attempt reloads.
struct Deciding<'a> {
    ingest: &'a Ingest,
    /// The request's policies.
    policy: &'a ActivePolicy,
    customer: &'a mut Customer,
    stream: &'a str,
    tx: &'a Transaction,
    fingerprint: Uuid,
    meta: &'a RequestMeta,
    /// What was decided, folded into the state once it is in the log.
    pending: Vec<PendingEvent>,
}

/// What came of a transaction in the pipeline.
enum Decided {
    /// Decided and appended now.
    Recorded(Answer, Box<Features>),
    /// A repeat of a known transaction id: the first answer, or a conflict.
    Repeat(Result<Outcome, IngestError>),
}

impl CommandStream for Deciding<'_> {
    type Done = Decided;
    type Error = IngestError;

    fn stream(&self) -> &str {
        self.stream
    }

    fn version(&self) -> Option<StreamVersion> {
        self.customer.version
    }

    async fn load(&mut self) -> Result<(), IngestError> {
        if !self.customer.loaded {
            self.ingest.load(self.customer, self.stream).await?;
        }
        Ok(())
    }

    async fn decide(&mut self) -> Result<Step<Decided>, IngestError> {
        let (ingest, tx) = (self.ingest, self.tx);
        if let Some(outcome) = ingest
            .repeat_of(self.customer, self.stream, tx, self.fingerprint)
            .await?
        {
            return Ok(Step::Done(Decided::Repeat(outcome)));
        }
        let ids = DecisionIds {
            transaction_event: Uuid::now_v7(),
            alert_event: Uuid::now_v7(),
            alert: AlertId(Uuid::now_v7()),
        };
        let peers = ingest.peers.snapshot(
            tx.merchant_id.as_ref(),
            tx.merchant_category.as_ref(),
            tx.timestamp,
        );
        let command = RecordTransaction {
            transaction: tx.clone(),
            ids,
            peers,
        };
        let deciding = std::time::Instant::now();
        let decided = decide_with_shadow(
            &self.customer.state,
            &command,
            &self.policy.live,
            self.policy.shadow.as_deref(),
        );
        note_failures(&decided, self.policy);
        metrics::histogram!("sentinel_decide_duration_seconds")
            .record(deciding.elapsed().as_secs_f64());
        let answer = Answer::of(&decided.recorded, decided.alert.as_ref().map(|(_, a)| a));
        let features = Box::new(decided.features);
        let pending = decided.into_events();
        let mut events = Vec::with_capacity(pending.len());
        for p in &pending {
            let new = new_event(&p.event, p.event_time, self.meta.metadata())
                .map_err(|e| IngestError::Store(e.to_string()))?;
            events.push(new.with_id(p.event_id));
        }
        self.pending = pending;
        Ok(Step::Append {
            events,
            then: Decided::Recorded(answer, features),
        })
    }

    fn appended(&mut self, outcome: &AppendOutcome) {
        for (p, position) in self.pending.drain(..).zip(&outcome.positions) {
            if matches!(p.event, DomainEvent::TransactionRecorded(_)) {
                let directory = self.ingest.peers.directory();
                directory.insert(self.tx.transaction_id.as_str(), position.0);
            }
            self.customer.state.apply(&p.event);
        }
        self.customer.version = Some(outcome.last_version);
    }

    fn forget(&mut self) {
        self.customer.reset(self.ingest.fresh_state());
    }
}

/// Expression rules that failed while evaluating count as not fired; each
/// failure is counted and logged, never an error answer.
fn note_failures(decided: &domain::Decided, policy: &ActivePolicy) {
    let live = &policy.live.version;
    let shadow = policy
        .shadow
        .as_ref()
        .map(|s| s.version.as_str())
        .unwrap_or("");
    for (failure, version) in decided
        .failures
        .iter()
        .map(|f| (f, live.as_str()))
        .chain(decided.shadow_failures.iter().map(|f| (f, shadow)))
    {
        metrics::counter!(
            "sentinel_expression_rule_errors_total",
            "rule" => failure.rule.to_string(),
            "policy" => version.to_owned()
        )
        .increment(1);
        tracing::warn!(
            transaction_id = %decided.recorded.transaction.transaction_id,
            rule = %failure.rule,
            policy = version,
            error = %failure.error,
            "an expression rule failed; counted as not fired"
        );
    }
}

/// Decisions, alerts, fired rules and the model's scores, for `/metrics`.
fn count_decision(answer: &Answer) {
    metrics::counter!("sentinel_decisions_total", "decision" => answer.decision.as_str())
        .increment(1);
    if let (Some(model), Some(score)) = (&answer.model_version, answer.model_score) {
        metrics::histogram!("sentinel_model_score", "model" => model.clone()).record(score);
    }
    for alert in &answer.alerts {
        metrics::counter!("sentinel_alerts_total", "priority" => alert.priority.as_str())
            .increment(1);
        for rule in &alert.rules {
            metrics::counter!("sentinel_rules_fired_total", "rule" => rule.rule.clone())
                .increment(1);
        }
    }
}

/// A stable fingerprint of a transaction's content. Of its sealed form
/// without the ciphertext, which differs each time the same fields are
/// sealed (random nonces): the keyed device fingerprint stands for them.
/// (A repeat of a transaction recorded before sealing existed is compared
/// with its plaintext form, so it reads as a different payload: ADR 0021.)
fn fingerprint(tx: &Transaction) -> Uuid {
    let bytes = if tx.device_info.as_ref().is_some_and(|d| d.sealed.is_some()) {
        let mut bare = tx.clone();
        if let Some(device) = &mut bare.device_info {
            device.sealed = None;
        }
        serde_json::to_vec(&bare)
    } else {
        serde_json::to_vec(tx)
    };
    Uuid::new_v5(&FINGERPRINT_NAMESPACE, &bytes.unwrap_or_default())
}

/// Answers rebuilt from a stream: each recorded transaction with its alert.
#[derive(Default)]
struct Answers {
    recorded: Vec<TransactionRecorded>,
    alerts: HashMap<AlertId, AlertRaised>,
}

impl Answers {
    fn add(&mut self, event: DomainEvent) {
        match event {
            DomainEvent::TransactionRecorded(r) => self.recorded.push(r),
            DomainEvent::AlertRaised(a) => {
                self.alerts.insert(a.alert_id, a);
            }
            _ => {}
        }
    }

    fn add_if(&mut self, event: DomainEvent, id: &TransactionId) {
        match &event {
            DomainEvent::TransactionRecorded(r) if &r.transaction.transaction_id == id => {
                self.add(event)
            }
            DomainEvent::AlertRaised(a) if &a.transaction_id == id => self.add(event),
            _ => {}
        }
    }

    fn finish(self) -> Vec<(TransactionId, Remembered)> {
        let alerts = self.alerts;
        self.recorded
            .into_iter()
            .map(|r| {
                let alert = r.alert_id.and_then(|id| alerts.get(&id));
                let remembered = Remembered {
                    fingerprint: fingerprint(&r.transaction),
                    answer: Answer::of(&r, alert),
                    at: r.transaction.timestamp,
                };
                (r.transaction.transaction_id.clone(), remembered)
            })
            .collect()
    }
}
