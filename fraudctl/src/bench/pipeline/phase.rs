//! One phase of `bench pipeline`: one or more segments of offered load (the
//! realistic mix, part single POSTs, part batch POSTs, both open loop),
//! each starting at its own offset, then the wait for the projectors to
//! pass the log's head, then each acknowledged transaction timed to the
//! read models ([`super::track`]). A ladder step is one segment; the burst
//! is two (the burst, and steady load from its end on, to see recovery).

use super::super::ingest::cpu::{self, Cpu};
use super::super::ingest::load::{self, Ack, Acks, Figures, OpenLoop, Shape};
use super::services::Services;
use super::track::{EndToEnd, Positions, Sampler, Samples, wait_for};
use crate::simulate::feed::Traffic;
use event_store::EventStore;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a phase runs against.
pub struct Ctx<'a> {
    pub services: &'a Services,
    pub store: Arc<dyn EventStore>,
    pub pool: PgPool,
    pub slowest: String,
    pub traffic: Arc<Traffic>,
    /// Share of transactions sent as single POSTs; the rest go in batches.
    pub single_share: f64,
    pub batch_size: usize,
    /// Longest wait for the projectors to pass the head after a phase.
    pub drain_limit: Duration,
}

/// One segment of offered load.
#[derive(Clone)]
pub struct Segment {
    /// Names its feeds (`{name}s` single, `{name}b` batch): unique per run.
    pub name: String,
    /// Transactions per second offered.
    pub rate: u64,
    pub seconds: f64,
    /// When it starts, after the phase's start.
    pub after: Duration,
    /// Most requests in flight (keep-alive connections).
    pub connections: usize,
}

/// What one segment measured.
pub struct Measured {
    /// Transactions per second actually offered (the rate, rounded to
    /// whole requests).
    pub offered_rate: f64,
    pub single: Figures,
    pub batch: Figures,
    pub e2e: EndToEnd,
    /// Per second of the segment (by due time): p99 of answer - due, and
    /// of checkpoint - answer, in ms; `None` where nothing was acknowledged.
    pub windows: Vec<Option<(f64, f64)>>,
    /// Acknowledged transactions, all endpoints.
    pub acked: u64,
}

impl Measured {
    pub fn sent(&self) -> u64 {
        self.single.sent + self.batch.sent
    }
    pub fn accepted(&self) -> u64 {
        self.single.accepted + self.batch.accepted
    }
    pub fn overloaded(&self) -> u64 {
        self.single.overloaded + self.batch.overloaded
    }
    pub fn errors(&self) -> u64 {
        self.single.errors + self.batch.errors
    }
    /// Of `errors`: the client's timeouts.
    pub fn timeouts(&self) -> u64 {
        self.single.timeouts + self.batch.timeouts
    }
    /// Of `errors`: answers 5xx other than 503.
    pub fn server_errors(&self) -> u64 {
        self.single.server_errors + self.batch.server_errors
    }
    /// Per-transaction latency from due to answer at `q`, both endpoints
    /// (a batch's items share its request's), ms.
    pub fn ingest_ms(&self, q: f64) -> f64 {
        let mut h = self.single.latency.clone();
        // Each batch request stands for its items: weight it so.
        let items = self.batch.accepted as f64 / self.batch.latency.len().max(1) as f64;
        for v in self.batch.latency.iter_recorded() {
            let _ = h.record_n(
                v.value_iterated_to(),
                (v.count_at_value() as f64 * items).round() as u64,
            );
        }
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// What a phase measured.
pub struct Phase {
    pub segments: Vec<Measured>,
    /// From the end of the offered load until the projectors passed the
    /// head; `None` if not within the drain limit.
    pub drain: Option<Duration>,
    pub peak_rss: u64,
    /// % of one core over the phase: command, projection, query, this
    /// process (load generator), PostgreSQL.
    pub cpu: [f64; 5],
}

pub async fn run(ctx: &Ctx<'_>, segments: &[Segment], label: &str) -> anyhow::Result<Phase> {
    let head_before = ctx.store.head_position().await?.0;
    let sampler = Sampler::start(
        ctx.pool.clone(),
        ctx.slowest.clone(),
        ctx.services.command.pid,
    );
    let pids = [
        ctx.services.command.pid,
        ctx.services.projection.pid,
        ctx.services.query.pid,
    ];
    let cpu_before = (Cpu::sample(), pids.map(cpu::ticks_of));
    let started = Instant::now();
    let total = segments
        .iter()
        .map(|s| s.after.as_secs_f64() + s.seconds)
        .fold(0.0, f64::max);
    let bar = ProgressBar::new((total * 10.0) as u64).with_style(ProgressStyle::with_template(
        "  {msg} [{bar:30}] {elapsed}/{duration}",
    )?);
    bar.set_message(label.to_owned());
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position((started.elapsed().as_secs_f64() * 10.0) as u64);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let runs = segments.iter().map(|s| offer(ctx, s.clone()));
    let offered = futures_util::future::join_all(runs).await;
    ticker.abort();
    bar.finish_and_clear();

    let offered_until = Instant::now();
    let head = ctx.store.head_position().await?.0;
    let drain = wait_for(&sampler, head, ctx.drain_limit)
        .await
        .then(|| offered_until.elapsed());
    let samples = sampler.finish().await;
    let cpu_after = (Cpu::sample(), pids.map(cpu::ticks_of));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let cpu = match (cpu_before.0, cpu_after.0) {
        (Some(a), Some(b)) => {
            let own = a.usage(&b, cores);
            let share = |i: usize| a.share(&b, cores, (cpu_before.1[i], cpu_after.1[i]));
            [share(0), share(1), share(2), own.process, own.postgres]
        }
        _ => [0.0; 5],
    };
    let mut feeds = Vec::new();
    for s in segments {
        feeds.push(format!("{}s", s.name));
        feeds.push(format!("{}b", s.name));
    }
    let names: Vec<&str> = feeds.iter().map(String::as_str).collect();
    let positions = Positions::read(&*ctx.store, head_before, &names).await?;
    let mut measured = Vec::new();
    for (segment, result) in segments.iter().zip(offered) {
        let o = result?;
        let mut e2e = EndToEnd::new();
        let (single_feed, batch_feed) =
            (format!("{}s", segment.name), format!("{}b", segment.name));
        e2e.add(&single_feed, &o.single_acks, &positions, &samples);
        e2e.add(&batch_feed, &o.batch_acks, &positions, &samples);
        let windows = windows(
            o.start,
            segment.seconds,
            [
                (single_feed.as_str(), &o.single_acks),
                (batch_feed.as_str(), &o.batch_acks),
            ],
            &positions,
            &samples,
        );
        measured.push(Measured {
            offered_rate: o.offered_rate,
            acked: (o.single_acks.len() + o.batch_acks.len()) as u64,
            single: o.single,
            batch: o.batch,
            e2e,
            windows,
        });
    }
    Ok(Phase {
        segments: measured,
        drain,
        peak_rss: samples.peak_rss,
        cpu,
    })
}

/// What one segment's two open loops gave back.
struct Offered {
    start: Instant,
    offered_rate: f64,
    single: Figures,
    batch: Figures,
    single_acks: Vec<Ack>,
    batch_acks: Vec<Ack>,
}

/// Runs one segment: single POSTs and batch POSTs side by side, each on
/// its own open-loop schedule, sharing one connection pool's worth.
async fn offer(ctx: &Ctx<'_>, s: Segment) -> anyhow::Result<Offered> {
    tokio::time::sleep(s.after).await;
    let start = Instant::now();
    let duration = Duration::from_secs_f64(s.seconds.max(0.1));
    let single_rate = (s.rate as f64 * ctx.single_share).round() as u64;
    let batched = s.rate.saturating_sub(single_rate) as f64;
    // Whole batch requests per second: the size bends a little so that
    // small rates still send batches.
    let batch_requests = (batched / ctx.batch_size.max(1) as f64).round().max(1.0) as u64;
    let items = (batched / batch_requests as f64).round().max(1.0) as usize;
    let offered_rate = single_rate as f64 + (batch_requests * items as u64) as f64;
    let client = load::client(s.connections);
    let single_acks: Acks = Arc::default();
    let batch_acks: Acks = Arc::default();
    let slots = (s.connections / 2).max(1);
    let singles = async {
        if single_rate == 0 {
            return Ok(empty());
        }
        load::open_loop_of(
            client.clone(),
            ctx.services.endpoint("/v1/transactions")?,
            ctx.traffic.feed(&format!("{}s", s.name)),
            OpenLoop::new(single_rate, duration),
            slots,
            Shape {
                items: 1,
                acks: Some(single_acks.clone()),
                quiet: true,
            },
        )
        .await
    };
    let batches = async {
        if batched < 1.0 {
            return Ok(empty());
        }
        load::open_loop_of(
            client.clone(),
            ctx.services.endpoint("/v1/transactions/batch")?,
            ctx.traffic.feed(&format!("{}b", s.name)),
            OpenLoop::new(batch_requests, duration),
            slots,
            Shape {
                items,
                acks: Some(batch_acks.clone()),
                quiet: true,
            },
        )
        .await
    };
    let (single, batch) = tokio::join!(singles, batches);
    let take = |a: &Acks| std::mem::take(&mut *a.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Offered {
        start,
        offered_rate: if batched < 1.0 {
            single_rate as f64
        } else {
            offered_rate
        },
        single: single?,
        batch: batch?,
        single_acks: take(&single_acks),
        batch_acks: take(&batch_acks),
    })
}

fn empty() -> Figures {
    Figures {
        sent: 0,
        requests: 0,
        accepted: 0,
        overloaded: 0,
        overloaded_without_retry_after: 0,
        errors: 0,
        timeouts: 0,
        server_errors: 0,
        elapsed: Duration::ZERO,
        latency: super::track::histogram(),
        decisions: Default::default(),
        first_problem: None,
    }
}

/// Per second of the segment (by due time): p99 of the ingest latency and
/// of the end-to-end latency after the answer.
fn windows(
    start: Instant,
    seconds: f64,
    acks: [(&str, &Vec<Ack>); 2],
    positions: &Positions,
    samples: &Samples,
) -> Vec<Option<(f64, f64)>> {
    let n = seconds.ceil().max(1.0) as usize;
    let mut ingest: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut after: Vec<Vec<f64>> = vec![Vec::new(); n];
    for (feed, acks) in acks {
        for a in acks {
            let w = (a.due.saturating_duration_since(start).as_secs_f64() as usize).min(n - 1);
            ingest[w].push(a.answered.saturating_duration_since(a.due).as_secs_f64() * 1e3);
            // Not in the log or not yet projected: as late as the sampling
            // saw, so a window that never caught up does not look recovered.
            let passed = positions
                .of(feed, a.send)
                .and_then(|p| samples.passed(p))
                .or(samples
                    .checkpoints
                    .last()
                    .map(|(t, _)| *t + Duration::from_secs(3600)));
            if let Some(p) = passed {
                after[w].push(p.saturating_duration_since(a.answered).as_secs_f64() * 1e3);
            }
        }
    }
    ingest
        .into_iter()
        .zip(after)
        .map(|(mut i, mut a)| {
            if i.is_empty() {
                return None;
            }
            Some((p99(&mut i), p99(&mut a)))
        })
        .collect()
}

fn p99(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1]
}

/// The first second from which every window's p99s stay under `bound`
/// (ingest, after-answer), ms; `None` if the last window is still over.
pub fn recovered_at(windows: &[Option<(f64, f64)>], bound: (f64, f64)) -> Option<usize> {
    let ok = |w: &Option<(f64, f64)>| w.is_some_and(|(i, a)| i <= bound.0 && a <= bound.1);
    let mut from = None;
    for (i, w) in windows.iter().enumerate() {
        match (ok(w), from) {
            (true, None) => from = Some(i),
            (false, _) => from = None,
            _ => {}
        }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_the_first_window_from_which_all_stay_under() {
        let w = |i, a| Some((i, a));
        let bound = (100.0, 200.0);
        assert_eq!(
            recovered_at(&[w(500.0, 10.0), w(50.0, 10.0), w(60.0, 20.0)], bound),
            Some(1)
        );
        assert_eq!(
            recovered_at(&[w(50.0, 10.0), None, w(60.0, 20.0)], bound),
            Some(2)
        );
        assert_eq!(recovered_at(&[w(50.0, 10.0), w(50.0, 900.0)], bound), None);
        assert_eq!(recovered_at(&[], bound), None);
    }

    #[test]
    fn p99_of_a_hundred_is_the_99th() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p99(&mut v), 99.0);
        assert_eq!(p99(&mut [3.0]), 3.0);
    }
}
