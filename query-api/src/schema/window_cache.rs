//! Long dashboard windows are computed once a minute, not once a request.
//!
//! Ranking ~20,000 merchants or customers over 30 days of a million
//! transactions costs a few hundred milliseconds however it is indexed (the
//! work grows with the window's rows, not with the page). A window of six
//! hours or more therefore ends at the end of the current minute, so every
//! request in that minute asks for exactly the same `[from, to)`, and its
//! heavy aggregates are kept per window for at most [`KEEP`]. What a
//! response says (`from`, `to`) is what it covers; the kept aggregates may
//! miss what arrived after they were computed, for at most a minute (the
//! cheap parts, such as intake, are always read afresh). Short windows are
//! always computed afresh.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Windows at least this long end at a whole minute and are kept.
pub const LONG_WINDOW: TimeDelta = TimeDelta::hours(6);
/// How long a computed aggregate is served.
pub const KEEP: Duration = Duration::from_secs(60);
/// At most this many aggregates are kept (windows x fields x arguments).
const MAX_ENTRIES: usize = 512;

/// Which aggregate, over which window, with which arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub field: &'static str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub arguments: String,
}

type Slot = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
pub struct WindowCache {
    slots: Mutex<HashMap<Key, (Instant, Slot)>>,
}

/// The end of a window of `length` asked for without `until`: now, or for a
/// long window the end of the current minute (nothing recorded so far is
/// left out).
pub fn window_end(length: TimeDelta, now: DateTime<Utc>) -> DateTime<Utc> {
    if length >= LONG_WINDOW {
        now.duration_trunc(TimeDelta::minutes(1))
            .map(|minute| minute + TimeDelta::minutes(1))
            .unwrap_or(now)
    } else {
        now
    }
}

impl WindowCache {
    /// The value of `key`, computed by `compute` at most once while kept:
    /// concurrent requests for the same key wait for the same computation.
    /// A failed computation is not kept.
    pub async fn get_or_try<T, E, F, Fut>(&self, key: Key, compute: F) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cell = self.cell::<T>(key);
        cell.get_or_try_init(compute).await.cloned()
    }

    fn cell<T: Send + Sync + 'static>(&self, key: Key) -> Arc<OnceCell<T>> {
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-insert;
        // the map itself is still whole.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, slot)) = slots.get(&key)
            && now.duration_since(*at) < KEEP
            && let Ok(cell) = slot.clone().downcast::<OnceCell<T>>()
        {
            return cell;
        }
        if slots.len() >= MAX_ENTRIES {
            slots.retain(|_, (at, _)| now.duration_since(*at) < KEEP);
            if slots.len() >= MAX_ENTRIES {
                slots.clear();
            }
        }
        let cell = Arc::new(OnceCell::new());
        slots.insert(key, (now, cell.clone() as Slot));
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(field: &'static str) -> Key {
        let to: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().expect("time");
        Key {
            field,
            from: to - TimeDelta::days(30),
            to,
            arguments: String::new(),
        }
    }

    #[tokio::test]
    async fn computes_once_per_key_and_not_on_failure() {
        let cache = WindowCache::default();
        let runs = AtomicUsize::new(0);
        let compute = || async {
            runs.fetch_add(1, Ordering::Relaxed);
            Ok::<_, ()>(7)
        };
        let k = key("a");
        assert_eq!(cache.get_or_try(k.clone(), compute).await, Ok(7));
        assert_eq!(cache.get_or_try(k.clone(), compute).await, Ok(7));
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(cache.get_or_try(key("b"), compute).await, Ok(7));
        assert_eq!(runs.load(Ordering::Relaxed), 2);
        let failed: Result<i32, &str> = cache.get_or_try(key("c"), || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(cache.get_or_try(key("c"), compute).await, Ok(7));
    }

    #[test]
    fn long_windows_end_at_the_end_of_the_minute() {
        let now: DateTime<Utc> = "2026-11-24T10:31:42.5Z".parse().expect("time");
        let minute: DateTime<Utc> = "2026-11-24T10:32:00Z".parse().expect("time");
        assert_eq!(window_end(TimeDelta::days(30), now), minute);
        assert_eq!(window_end(TimeDelta::hours(6), now), minute);
        assert_eq!(window_end(TimeDelta::hours(1), now), now);
    }
}
