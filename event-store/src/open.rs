//! Opening the configured event log: the one place that reads
//! `SENTINEL_EVENT_STORE` and builds the `Arc<dyn EventStore>` every service
//! runs on (the command service, the projection service and the query API,
//! on their own or together in `fraudctl serve`), so they cannot disagree on
//! where the log is. See docs/adr/0023-kurrentdb-selected-at-run-time.md.
//!
//! - unset, empty or `postgres`: the PostgreSQL log (the default), over the
//!   service's pool; a writer that asks for it signs checkpoints (ADR 0019);
//! - a KurrentDB connection string (`esdb://`, `kurrentdb://`, `kurrent://`,
//!   `kdb://`, each also `+discover`): the KurrentDB backend, which is
//!   compiled in only with the cargo feature `esdb`. Without it, such a
//!   setting is an error that says how to build with it. With it, the server
//!   must answer within a bounded time at start ([`OpenOptions::timeout`]),
//!   else the error names it and the variable: a service never starts
//!   "half up" waiting for a log that is not there.
//!
//! Read models, projector checkpoints and policy stay in PostgreSQL on both
//! backends, so `DATABASE_URL` is always required. The hash chain and the
//! signed checkpoints are a property of the PostgreSQL log only: tools that
//! work on it call [`LogBackend::require_postgres`].
//!
//! The setting may carry credentials (`kurrentdb://user:password@host`):
//! nothing here ever prints its password (`settings::redact_url`).

use crate::postgres::PgEventStore;
use crate::store::EventStore;
use crate::trust::CheckpointPolicy;
use settings::redact_url as redact;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// The variable that selects the event log's backend.
pub const VARIABLE: &str = "SENTINEL_EVENT_STORE";

/// The variable that bounds how long a service waits for KurrentDB at start.
pub const TIMEOUT_VARIABLE: &str = "SENTINEL_EVENT_STORE_TIMEOUT_SECS";

/// How long a service waits for KurrentDB at start unless
/// [`TIMEOUT_VARIABLE`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL schemes of KurrentDB connection strings (those the `kurrentdb`
/// client accepts).
const KURRENT_SCHEMES: [&str; 8] = [
    "esdb",
    "esdb+discover",
    "kurrentdb",
    "kurrentdb+discover",
    "kurrent",
    "kurrent+discover",
    "kdb",
    "kdb+discover",
];

/// The command to show someone whose binary lacks the KurrentDB backend.
const BUILD_HINT: &str = "cargo build --release -p fraudctl --features esdb";

/// Where the event log lives.
#[derive(Clone, PartialEq, Eq)]
pub enum LogBackend {
    /// PostgreSQL, in the service's own database (the default).
    Postgres,
    /// KurrentDB at this connection string (may hold credentials).
    Kurrent { url: String },
}

// The connection string may hold a password: Debug shows it redacted.
impl std::fmt::Debug for LogBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogBackend::Postgres => f.write_str("Postgres"),
            LogBackend::Kurrent { url } => f
                .debug_struct("Kurrent")
                .field("url", &redact(url))
                .finish(),
        }
    }
}

impl std::fmt::Display for LogBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogBackend::Postgres => f.write_str("PostgreSQL"),
            LogBackend::Kurrent { url } => write!(f, "KurrentDB at {}", redact(url)),
        }
    }
}

/// Why the configured log could not be opened. Every message names
/// [`VARIABLE`] and shows the setting without credentials.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{VARIABLE}={shown} is neither `postgres` nor a KurrentDB connection string \
         (esdb://host:2113, kurrentdb://user:password@host:2113, ...)"
    )]
    Unknown { shown: String },
    #[error(
        "{VARIABLE}={shown} selects the KurrentDB event log, but this binary was built \
         without the KurrentDB backend: build it with the cargo feature `esdb` \
         (`{BUILD_HINT}`; the services take the same feature), or unset {VARIABLE} \
         to keep the log in PostgreSQL"
    )]
    NotBuilt { shown: String },
    #[error(
        "the event log in KurrentDB at {shown} ({VARIABLE}) did not answer within {}s: \
         is the server running and reachable from here? \
         ({TIMEOUT_VARIABLE} sets how long to wait)",
        .timeout.as_secs_f64()
    )]
    Timeout { shown: String, timeout: Duration },
    #[error(
        "the event log in KurrentDB at {shown} ({VARIABLE}) cannot be opened \
         (is the server running and reachable from here?): {reason}"
    )]
    Unreachable { shown: String, reason: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl LogBackend {
    /// The backend [`VARIABLE`] selects (PostgreSQL when it is unset).
    pub fn from_env() -> Result<LogBackend, OpenError> {
        LogBackend::parse(std::env::var(VARIABLE).ok().as_deref())
    }

    /// The backend a value of [`VARIABLE`] selects; `None` is unset.
    pub fn parse(value: Option<&str>) -> Result<LogBackend, OpenError> {
        let text = value.map(str::trim).unwrap_or_default();
        if text.is_empty() || text.eq_ignore_ascii_case("postgres") {
            return Ok(LogBackend::Postgres);
        }
        let scheme = text
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme {
            Some(s) if KURRENT_SCHEMES.contains(&s.as_str()) => Ok(LogBackend::Kurrent {
                url: text.to_owned(),
            }),
            _ => Err(OpenError::Unknown {
                shown: redact(text),
            }),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, LogBackend::Postgres)
    }

    /// For tools that work on the PostgreSQL log itself (its hash chain,
    /// its `events` table): an error naming `what` when the log is elsewhere.
    pub fn require_postgres(&self, what: &str) -> anyhow::Result<()> {
        match self {
            LogBackend::Postgres => Ok(()),
            LogBackend::Kurrent { url } => anyhow::bail!(
                "{what} works on the PostgreSQL event log only, and {VARIABLE}={} puts the log \
                 in KurrentDB (which has no hash chain or signed checkpoints; see \
                 docs/adr/0023-kurrentdb-selected-at-run-time.md); unset {VARIABLE} to run it \
                 on a PostgreSQL log",
                redact(url)
            ),
        }
    }
}

/// How a service opens the log.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The service appends and seals what it writes: on PostgreSQL, its
    /// checkpoints are signed with the configured key
    /// ([`CheckpointPolicy::from_env`]). KurrentDB has no chain to seal.
    pub signing: bool,
    /// How long to wait for KurrentDB to answer at start.
    pub timeout: Duration,
}

impl OpenOptions {
    /// A service's options: `signing` as given, the timeout from
    /// [`TIMEOUT_VARIABLE`] (seconds) or [`DEFAULT_TIMEOUT`].
    pub fn from_env(signing: bool) -> anyhow::Result<OpenOptions> {
        let timeout = match settings::var::<f64>(TIMEOUT_VARIABLE)? {
            Some(secs) => Duration::try_from_secs_f64(secs.max(0.001))
                .map_err(|e| anyhow::anyhow!("{TIMEOUT_VARIABLE}: {e}"))?,
            None => DEFAULT_TIMEOUT,
        };
        Ok(OpenOptions { signing, timeout })
    }
}

/// Opens the log `backend` names. `pool` is the service's PostgreSQL pool
/// (migrated): the log itself on PostgreSQL; unused by KurrentDB, whose
/// services keep their read models, checkpoints and policy in it anyway.
pub async fn open(
    backend: &LogBackend,
    pool: &PgPool,
    options: &OpenOptions,
) -> Result<Arc<dyn EventStore>, OpenError> {
    match backend {
        LogBackend::Postgres => Ok(if options.signing {
            Arc::new(PgEventStore::signing(
                pool.clone(),
                CheckpointPolicy::from_env()?,
            ))
        } else {
            Arc::new(PgEventStore::new(pool.clone()))
        }),
        LogBackend::Kurrent { url } => open_kurrent(url, pool, options).await,
    }
}

#[cfg(feature = "esdb")]
async fn open_kurrent(
    url: &str,
    pool: &PgPool,
    options: &OpenOptions,
) -> Result<Arc<dyn EventStore>, OpenError> {
    let shown = redact(url);
    // Personal fields are sealed whatever holds the log; the data keys stay
    // in PostgreSQL, where erasing one is a real delete.
    let master = crate::postgres::keys::configured_master().map_err(anyhow::Error::from)?;
    let previous =
        crate::postgres::keys::configured_previous_master().map_err(anyhow::Error::from)?;
    let keys = Arc::new(
        crate::postgres::keys::KeyRing::new(pool.clone(), master, Default::default())
            .with_previous(previous),
    );
    // The client retries a node that refuses connections, for ever in some
    // versions: the start is bounded here, whatever the client does.
    let connect = crate::esdb::EsdbEventStore::connect(url, crate::Upcasters::default());
    match tokio::time::timeout(options.timeout, connect).await {
        Ok(Ok(store)) => {
            if options.signing {
                tracing::info!(
                    log = %shown,
                    "the event log is in KurrentDB: no hash chain, no signed checkpoints \
                     (they are a property of the PostgreSQL log)"
                );
            }
            tracing::info!(log = %shown, "event log: KurrentDB");
            Ok(Arc::new(store.with_key_ring(keys)))
        }
        Ok(Err(error)) => Err(OpenError::Unreachable {
            shown,
            reason: error.to_string(),
        }),
        Err(_) => Err(OpenError::Timeout {
            shown,
            timeout: options.timeout,
        }),
    }
}

#[cfg(not(feature = "esdb"))]
async fn open_kurrent(
    url: &str,
    _: &PgPool,
    _: &OpenOptions,
) -> Result<Arc<dyn EventStore>, OpenError> {
    Err(OpenError::NotBuilt { shown: redact(url) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_empty_and_postgres_select_postgres() {
        for value in [
            None,
            Some(""),
            Some("  "),
            Some("postgres"),
            Some("Postgres"),
        ] {
            assert_eq!(LogBackend::parse(value).ok(), Some(LogBackend::Postgres));
        }
    }

    #[test]
    fn kurrentdb_connection_strings_select_kurrentdb() {
        for url in [
            "esdb://localhost:2113?tls=false",
            "esdb+discover://cluster.example:2113",
            "kurrentdb://admin:changeit@localhost:2113",
            "KurrentDB://a:2113,b:2113,c:2113",
            "kdb://localhost:2113",
        ] {
            assert_eq!(
                LogBackend::parse(Some(url)).ok(),
                Some(LogBackend::Kurrent {
                    url: url.to_owned()
                }),
                "{url}"
            );
        }
    }

    #[test]
    fn anything_else_is_an_error_without_the_password() {
        let error = LogBackend::parse(Some("postgresql://u:hunter2@db/x"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(VARIABLE), "{error}");
        assert!(error.contains("postgresql://u:***@db/x"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn debug_hides_the_password() {
        assert_eq!(
            format!(
                "{:?}",
                LogBackend::Kurrent {
                    url: "esdb://u:hunter2@h:1".into()
                }
            ),
            "Kurrent { url: \"esdb://u:***@h:1\" }"
        );
    }

    #[test]
    fn postgres_only_tools_refuse_a_kurrentdb_log_by_name() {
        assert!(
            LogBackend::Postgres
                .require_postgres("fraudctl verify")
                .is_ok()
        );
        let error = LogBackend::Kurrent {
            url: "esdb://admin:hunter2@h:2113".into(),
        }
        .require_postgres("fraudctl verify")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.starts_with("fraudctl verify works on the PostgreSQL event log only"),
            "{error}"
        );
        assert!(
            error.contains("SENTINEL_EVENT_STORE=esdb://admin:***@h:2113"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }
}
