//! Waiting for something to become true, with a deadline: the services run
//! on their own tasks, so tests poll what they can observe rather than sleep
//! a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every `every` until it answers `Ok(())`; panics with the
/// last `Err` (what is still missing) once `timeout` has passed.
pub async fn until<F, Fut>(what: &str, timeout: Duration, every: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let missing = match check().await {
            Ok(()) => return,
            Err(missing) => missing,
        };
        assert!(Instant::now() < deadline, "{what}: {missing}");
        tokio::time::sleep(every).await;
    }
}

/// Waits (at most 30 s) until `{base}/readyz` answers 2xx: for services
/// started as processes, whose start the test cannot await.
pub async fn ready(http: &reqwest::Client, base: &str) {
    let url = format!("{base}/readyz");
    until(
        "the service did not become ready",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{url} answered {}", r.status())),
                Err(e) => Err(format!("{url}: {e}")),
            }
        },
    )
    .await;
}
