//! The customer loader: every cache miss, from any request, goes through one
//! small batching task that reads all the customer streams asked for since
//! its last read with one `read_streams` call.
//!
//! Why: with many customers, nearly every transaction is its customer's
//! first since the cache last saw it, so reads outnumber appends. One read
//! per customer costs a round trip, a pool connection and a query plan each;
//! one read for everything that is waiting costs them once. Nothing waits
//! for a timer: a read starts as soon as a read slot is free, and whatever
//! arrives while the slots are busy rides on the next read, so batches grow
//! with the load by themselves (as the store's group commit does).
//!
//! The channel is bounded (by the ingest's in-flight limit, so a caller
//! never waits to be queued), and at most `concurrent_reads` reads run at a
//! time, so a burst of misses cannot take every pool connection from the
//! writer.

use event_store::{EventStore, RecordedEvent, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Events per stream one batched read returns; a stream with more is read
/// on by its caller (see `Ingest::load_from`).
pub const PAGE: usize = 1000;

type Reply = Result<Vec<Vec<RecordedEvent>>, StoreError>;

struct Job {
    streams: Vec<String>,
    reply: oneshot::Sender<Reply>,
}

/// Tuning of the loader.
#[derive(Debug, Clone, Copy)]
pub struct LoaderOptions {
    /// Streams one read may ask for (a batch of customers asked together is
    /// never split, so a read may exceed it by one caller's worth).
    pub max_streams: usize,
    /// Reads in flight at once.
    pub concurrent_reads: usize,
    /// Callers that may wait for a read.
    pub queue: usize,
}

#[derive(Clone)]
pub struct Loader {
    jobs: mpsc::Sender<Job>,
    reads: Arc<AtomicU64>,
}

impl Loader {
    /// Starts the batching task; it ends when the last `Loader` is dropped.
    pub fn start(store: Arc<dyn EventStore>, options: LoaderOptions) -> Loader {
        let (jobs, queue) = mpsc::channel(options.queue.max(1));
        let reads = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(store, queue, options, reads.clone()));
        Loader { jobs, reads }
    }

    /// Reads made so far (each for any number of streams).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The first [`PAGE`] events of each stream, in the order asked.
    pub async fn load(&self, streams: Vec<String>) -> Reply {
        if streams.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { streams, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(
    store: Arc<dyn EventStore>,
    mut queue: mpsc::Receiver<Job>,
    options: LoaderOptions,
    reads: Arc<AtomicU64>,
) {
    let slots = Arc::new(Semaphore::new(options.concurrent_reads.max(1)));
    loop {
        // Wait for a free slot first: jobs that arrive meanwhile pile up in
        // the queue and are all taken by the next read.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut asked = first.streams.len();
        let mut jobs = vec![first];
        while asked < options.max_streams {
            match queue.try_recv() {
                Ok(job) => {
                    asked += job.streams.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("sentinel_customer_load_batch_size").record(asked as f64);
        reads.fetch_add(1, Ordering::Relaxed);
        let store = store.clone();
        tokio::spawn(async move {
            read(&*store, jobs).await;
            drop(slot);
        });
    }
}

/// One read for every job; each job gets back its own slice, in order.
async fn read(store: &dyn EventStore, jobs: Vec<Job>) {
    let asked: Vec<(&str, u64)> = jobs
        .iter()
        .flat_map(|j| j.streams.iter().map(|s| (s.as_str(), 0)))
        .collect();
    match store.read_streams(&asked, PAGE).await {
        Ok(answers) => {
            let mut answers = answers.into_iter();
            for job in jobs {
                let mine: Vec<_> = answers.by_ref().take(job.streams.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(error) => {
            for job in jobs {
                let _ = job.reply.send(Err(error.clone()));
            }
        }
    }
}
