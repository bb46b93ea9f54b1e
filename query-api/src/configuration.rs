//! Settings of the query API, from the environment (`SENTINEL_*`), each with
//! a default that runs on a laptop.
//! Read with the workspace's one parser (`settings::var`: unset means the
//! default, malformed is an error naming the variable) and, for the
//! secret `SENTINEL_TOKENS`, `access::tokens`, whose errors never quote it.

use access::Tokens;
use settings::var;
use std::net::SocketAddr;
use std::time::Duration;

/// The largest page any connection serves, whatever the settings say.
pub const PAGE_SIZE_CAP: usize = 500;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `SENTINEL_QUERY_ADDR`, default 127.0.0.1:8081 (port 0: any free port).
    pub listen: SocketAddr,
    /// `SENTINEL_TOKENS`: `"token:role,..."`; reading needs `analyst` (or
    /// `admin`). Default none: the API is open. `Debug` redacts them.
    pub tokens: Tokens,
    /// The query's limits.
    pub limits: Limits,
    /// `SENTINEL_QUERY_POOL_SIZE`: connections of the query pool, default 16.
    pub pool_size: u32,
    /// `SENTINEL_QUERY_STATEMENT_TIMEOUT_MS`: longest one SQL statement may
    /// run, default 5,000 (a runaway query is cancelled, not queued behind).
    pub statement_timeout: Duration,
    /// `SENTINEL_ALERT_POLL_MS`: how often the live-alert poller looks at
    /// the alerts projector's checkpoint while someone subscribes, default 200.
    pub alert_poll_interval: Duration,
    /// `SENTINEL_QUERY_STATS` (`true`/`false`), default false: add the
    /// number of SQL statements a request ran to the response's
    /// `extensions.sqlStatements` (for tests and tuning).
    pub expose_query_stats: bool,
    /// `SENTINEL_COMMAND_URL`, e.g. `http://127.0.0.1:8080`: the command
    /// service the console's actions (acknowledge, resolve, label) are
    /// forwarded to (`forward`). Default none: those answer 503.
    /// `fraudctl serve --role all` and the demo set it to their own.
    pub command_url: Option<String>,
}

/// What protects the service from expensive queries.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `SENTINEL_QUERY_MAX_DEPTH`, default 15 (GraphiQL's introspection
    /// query needs 13).
    pub max_depth: usize,
    /// `SENTINEL_QUERY_MAX_COMPLEXITY`, default 25,000: every field costs 1,
    /// a page costs its size times what each row asks for.
    pub max_complexity: usize,
    /// `SENTINEL_QUERY_MAX_PAGE_SIZE`, default and at most 500.
    pub max_page_size: usize,
    /// `SENTINEL_QUERY_BODY_LIMIT_BYTES`: a POST body, default 256 KiB.
    pub max_body_bytes: usize,
    /// `SENTINEL_TIME_TRAVEL_MAX_EVENTS`: most events one `stateAsOf`
    /// replays, default 200,000.
    pub time_travel_max_events: usize,
    /// `SENTINEL_EVENTS_SCAN_LIMIT`: most log events one filtered `events`
    /// page reads looking for matches, default 20,000.
    pub events_scan_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 15,
            max_complexity: 25_000,
            max_page_size: PAGE_SIZE_CAP,
            max_body_bytes: 256 * 1024,
            time_travel_max_events: 200_000,
            events_scan_limit: 20_000,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tokens: Tokens::default(),
            limits: Limits::default(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            alert_poll_interval: Duration::from_millis(200),
            expose_query_stats: false,
            command_url: None,
        }
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let d = Settings::default();
        let l = d.limits;
        let max_page_size: usize = var("SENTINEL_QUERY_MAX_PAGE_SIZE")?.unwrap_or(l.max_page_size);
        anyhow::ensure!(
            (1..=PAGE_SIZE_CAP).contains(&max_page_size),
            "SENTINEL_QUERY_MAX_PAGE_SIZE must be 1..={PAGE_SIZE_CAP}"
        );
        Ok(Settings {
            listen: var("SENTINEL_QUERY_ADDR")?.unwrap_or(d.listen),
            tokens: access::tokens("SENTINEL_TOKENS")?,
            limits: Limits {
                max_depth: var("SENTINEL_QUERY_MAX_DEPTH")?.unwrap_or(l.max_depth),
                max_complexity: var("SENTINEL_QUERY_MAX_COMPLEXITY")?.unwrap_or(l.max_complexity),
                max_page_size,
                max_body_bytes: var("SENTINEL_QUERY_BODY_LIMIT_BYTES")?.unwrap_or(l.max_body_bytes),
                time_travel_max_events: var("SENTINEL_TIME_TRAVEL_MAX_EVENTS")?
                    .unwrap_or(l.time_travel_max_events),
                events_scan_limit: var("SENTINEL_EVENTS_SCAN_LIMIT")?
                    .unwrap_or(l.events_scan_limit),
            },
            pool_size: var("SENTINEL_QUERY_POOL_SIZE")?.unwrap_or(d.pool_size),
            statement_timeout: var("SENTINEL_QUERY_STATEMENT_TIMEOUT_MS")?
                .map(Duration::from_millis)
                .unwrap_or(d.statement_timeout),
            alert_poll_interval: var("SENTINEL_ALERT_POLL_MS")?
                .map(Duration::from_millis)
                .unwrap_or(d.alert_poll_interval),
            expose_query_stats: var("SENTINEL_QUERY_STATS")?.unwrap_or(d.expose_query_stats),
            command_url: var("SENTINEL_COMMAND_URL")?,
        })
    }
}
