//! A throw-away cluster of a test's own: the same cluster as `fraudctl pg
//! up` (see the crate's header), in a fresh folder under the temp dir, for
//! tests that stop and restart the database, which they must never do to
//! the shared server on 5432 that every other test uses. Dropping the
//! handle stops the server (immediate) and deletes its folder.
//!
//! Test code: its methods panic with the cause instead of returning errors.

use crate::{StopMode, running_url, stop, up};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct PrivatePg {
    dir: PathBuf,
    url: String,
    port: u16,
}

impl PrivatePg {
    /// initdb in a fresh folder under the temp dir, then start. Panics with
    /// a clear message when no server binaries are installed.
    pub fn start_new() -> PrivatePg {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Short: the Unix socket lives in it and its path is limited to 107 bytes.
        let dir = std::env::temp_dir().join(format!(
            "snt-pg-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let url = up(&dir).unwrap_or_else(|e| panic!("starting a private PostgreSQL: {e:#}"));
        let port = port_of(&url);
        PrivatePg { dir, url, port }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the server again; returns once it accepts connections, on the
    /// same port (the pools of the test hold its URL).
    pub fn start(&self) {
        let url = up(&self.dir).unwrap_or_else(|e| panic!("restarting PostgreSQL: {e:#}"));
        assert_eq!(
            url, self.url,
            "PostgreSQL came back on another port (its own was taken meanwhile)"
        );
    }

    /// `pg_ctl stop -w`: returns once the server is gone.
    pub fn stop(&self, mode: StopMode) {
        stop(&self.dir, mode).unwrap_or_else(|e| panic!("stopping PostgreSQL: {e:#}"));
    }

    /// Whether the server runs (its postmaster is alive).
    pub fn running(&self) -> bool {
        running_url(&self.dir).is_ok_and(|url| url.is_some())
    }

    /// Whether something accepts TCP connections on the cluster's port.
    pub fn accepting(&self) -> bool {
        TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_millis(500),
        )
        .is_ok()
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = stop(&self.dir, StopMode::Immediate);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The port of a `postgres://user@127.0.0.1:<port>/db` URL made by [`up`].
fn port_of(url: &str) -> u16 {
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_of_urls() {
        assert_eq!(
            super::port_of("postgres://postgres@127.0.0.1:54321/postgres"),
            54321
        );
    }
}
