//! Rate limiting of the API routes (`/v1/*`), per caller, with `governor`
//! (GCRA: a steady rate plus a burst, no background timer).
//!
//! Who the caller is: the bearer token when it is one of the configured
//! tokens (so one busy client does not throttle another, whatever their
//! addresses), else the client's IP address (no tokens configured, or an
//! unknown or missing token: a flood of refused requests is limited too, per
//! address). Tokens are keyed by their position in the configuration, so the
//! limiter holds no copy of a secret. The address is the TCP peer's:
//! forwarded-for headers are not trusted, since any client can send them.
//!
//! Over the limit the answer is 429 `application/problem+json` with
//! `Retry-After`; the request is not read, authenticated or handled.

use super::auth::{Tokens, bearer_token};
use super::problem::Problem;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A caller's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// The steady rate, requests per second.
    pub per_sec: NonZeroU32,
    /// How many requests may come at once after a quiet spell.
    pub burst: NonZeroU32,
}

/// Whose allowance a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    /// The configured token at this position.
    Token(usize),
    Ip(IpAddr),
    /// No peer address is known (the router served without connect info,
    /// as in unit tests): such callers share one allowance.
    Unknown,
}

/// Checks between two sweeps of callers whose allowance is back to full
/// (which drops them from memory, so addresses seen once do not pile up).
const SWEEP_EVERY: u64 = 4096;

/// The middleware's state.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    limit: RateLimit,
    tokens: Arc<Tokens>,
    limiter: RateLimiter<Caller, DefaultKeyedStateStore<Caller>, DefaultClock>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl Limiter {
    pub fn new(limit: RateLimit, tokens: Arc<Tokens>) -> Self {
        let quota = Quota::per_second(limit.per_sec).allow_burst(limit.burst);
        Limiter {
            inner: Arc::new(Inner {
                limit,
                tokens,
                limiter: RateLimiter::keyed(quota),
                clock: DefaultClock::default(),
                checks: AtomicU64::new(0),
            }),
        }
    }

    fn caller(&self, request: &Request) -> Caller {
        if let Some(index) = bearer_token(request).and_then(|t| self.inner.tokens.identify(t)) {
            return Caller::Token(index);
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(Caller::Unknown, |ConnectInfo(peer)| Caller::Ip(peer.ip()))
    }

    /// `Ok` if `caller` may go on; else how many seconds to wait (at least 1).
    fn check(&self, caller: Caller) -> Result<(), u32> {
        let inner = &self.inner;
        if inner.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            inner.limiter.retain_recent();
            inner.limiter.shrink_to_fit();
        }
        inner.limiter.check_key(&caller).map_err(|not_until| {
            let wait = not_until.wait_time_from(inner.clock.now());
            // Whole seconds, rounded up: Retry-After has no fractions, and
            // a client that waits that long is let through.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
        })
    }
}

/// The middleware: lets the request through, or answers 429.
pub async fn limit(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    let caller = limiter.caller(&request);
    match limiter.check(caller) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            let by = match caller {
                Caller::Token(_) => "token",
                Caller::Ip(_) | Caller::Unknown => "address",
            };
            // Debug, not warn: a client over its limit could otherwise
            // flood the log as fast as it floods the API.
            tracing::debug!(by, path = %request.uri().path(), "rate limited");
            metrics::counter!("sentinel_rate_limited_total", "by" => by).increment(1);
            let RateLimit { per_sec, burst } = limiter.inner.limit;
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            )
            .detail(format!(
                "the limit per {by} is {per_sec} requests per second, {burst} at once; retry after {retry_after} s"
            ))
            .retry_after(retry_after)
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_sec: u32, burst: u32) -> Limiter {
        let limit = RateLimit {
            per_sec: NonZeroU32::new(per_sec).expect("non-zero"),
            burst: NonZeroU32::new(burst).expect("non-zero"),
        };
        let tokens = Tokens::parse("a:ingest,b:ingest").expect("tokens");
        Limiter::new(limit, Arc::new(tokens))
    }

    #[test]
    fn the_burst_then_a_wait_of_whole_seconds() {
        let limiter = limiter(1, 3);
        for _ in 0..3 {
            assert_eq!(limiter.check(Caller::Token(0)), Ok(()));
        }
        assert_eq!(limiter.check(Caller::Token(0)), Err(1));
        // Another caller has its own allowance.
        assert_eq!(limiter.check(Caller::Token(1)), Ok(()));
        assert_eq!(limiter.check(Caller::Unknown), Ok(()));
    }

    #[test]
    fn callers_are_told_apart_by_token_then_address() {
        let limiter = limiter(10, 10);
        let request = |auth: Option<&str>, peer: Option<&str>| {
            let mut builder = Request::builder().uri("/v1/transactions");
            if let Some(auth) = auth {
                builder = builder.header("authorization", auth);
            }
            let mut request = builder.body(axum::body::Body::empty()).expect("request");
            if let Some(peer) = peer {
                let addr: SocketAddr = peer.parse().expect("addr");
                request.extensions_mut().insert(ConnectInfo(addr));
            }
            request
        };
        let ip: IpAddr = "10.0.0.7".parse().expect("ip");
        let caller = |auth, peer| limiter.caller(&request(auth, peer));
        assert_eq!(
            caller(Some("Bearer b"), Some("10.0.0.7:5")),
            Caller::Token(1)
        );
        assert_eq!(
            caller(Some("Bearer zz"), Some("10.0.0.7:5")),
            Caller::Ip(ip)
        );
        assert_eq!(caller(None, Some("10.0.0.7:6")), Caller::Ip(ip));
        assert_eq!(caller(None, None), Caller::Unknown);
    }
}
