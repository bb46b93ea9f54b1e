//! The services as deployed, for `bench pipeline`: the command side, the
//! projection service and the query API, each its own process
//! (`fraudctl serve --role ...` of this very executable) on one fresh
//! database, each on a free port it reports on its stdout. Separate
//! processes, as in docker-compose, so each has its own runtime and its own
//! memory, which the benchmark reads from /proc.

use super::super::ingest::load::Endpoint;
use anyhow::Context;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a service may take to start and say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One service process.
pub struct Service {
    pub name: &'static str,
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:port`.
    pub base: String,
}

/// The three services of one run.
pub struct Services {
    pub command: Service,
    pub projection: Service,
    pub query: Service,
    token: String,
}

impl Services {
    /// Starts the three against `url` (migrated already) and waits until
    /// each answers `/readyz`.
    pub async fn start(url: &str, projection_env: &[(String, String)]) -> anyhow::Result<Services> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let tokens = format!("{token}:ingest");
        let command = spawn(
            "command",
            url,
            &[
                ("SENTINEL_COMMAND_ADDR", "127.0.0.1:0"),
                ("SENTINEL_TOKENS", tokens.as_str()),
            ],
            &[],
            "command service",
        )
        .await?;
        let projection = spawn(
            "projection",
            url,
            &[("SENTINEL_PROJECTION_ADDR", "127.0.0.1:0")],
            projection_env,
            "projection service",
        )
        .await?;
        let query = spawn(
            "query",
            url,
            &[("SENTINEL_QUERY_ADDR", "127.0.0.1:0")],
            &[],
            "query API",
        )
        .await?;
        let services = Services {
            command,
            projection,
            query,
            token,
        };
        for s in [&services.command, &services.projection, &services.query] {
            ready(s).await?;
        }
        Ok(services)
    }

    /// An endpoint of the command service, with the run's token.
    pub fn endpoint(&self, path: &str) -> anyhow::Result<Endpoint> {
        Endpoint::new(&format!("{}{path}", self.command.base), &self.token)
    }

    /// Stops all three (they hold nothing that is not in the log).
    pub async fn stop(self) {
        for mut s in [self.command, self.projection, self.query] {
            let _ = s.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), s.child.wait()).await;
        }
    }
}

/// Resident memory of process `pid`, in bytes (0 once it is gone).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Runs `fraudctl serve --role {role}` and reads its stdout until the line
/// that starts with `banner` names its address.
async fn spawn(
    role: &'static str,
    url: &str,
    env: &[(&str, &str)],
    more_env: &[(String, String)],
    banner: &str,
) -> anyhow::Result<Service> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut command = Command::new(exe);
    command
        .args(["serve", "--role", role])
        .env("DATABASE_URL", url)
        // Warnings only: an overloaded service logs at warn, and the
        // benchmark's own lines must stay readable.
        .env(
            "RUST_LOG",
            std::env::var("SENTINEL_BENCH_SERVICE_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    for (k, v) in more_env {
        command.env(k, v);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting the {role} service"))?;
    let pid = child.id().unwrap_or(0);
    let stdout = child.stdout.take().context("the service's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with(banner)
                && let Some(at) = line.find("http://")
            {
                let base: String = line[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                return anyhow::Ok(Some(base.trim_end_matches('/').to_owned()));
            }
        }
        anyhow::Ok(None)
    })
    .await;
    let base = match found {
        Ok(Ok(Some(base))) => base,
        Ok(Ok(None)) => anyhow::bail!("the {role} service exited before it listened"),
        Ok(Err(e)) => return Err(e.context(format!("reading the {role} service's output"))),
        Err(_) => anyhow::bail!("the {role} service did not listen within {START_TIMEOUT:?}"),
    };
    // Keep draining its stdout, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Service {
        name: role,
        child,
        pid,
        base,
    })
}

/// Waits until the service answers `GET /readyz` with 200.
async fn ready(service: &Service) -> anyhow::Result<()> {
    let client = super::super::ingest::load::client(1);
    let uri: hyper::Uri = format!("{}/readyz", service.base).parse()?;
    let started = std::time::Instant::now();
    loop {
        let request = hyper::Request::get(uri.clone())
            .body(http_body_util::Full::new(hyper::body::Bytes::new()))?;
        if let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_secs(2), client.request(request)).await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < START_TIMEOUT,
            "the {} service at {} was not ready within {START_TIMEOUT:?}",
            service.name,
            service.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
