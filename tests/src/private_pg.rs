//! A throw-away PostgreSQL cluster of the test's own, from the system's
//! server binaries (initdb, pg_ctl), on a free port: for tests that stop and
//! restart the database, which they must never do to the shared server on
//! 5432 that every other test uses.
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to, and
//! runs as, the `postgres` user (as `fraudctl pg up` does, in
//! `fraudctl/src/local_pg.rs`, which is private to the CLI). Dropping the
//! handle stops the server (immediate) and deletes its folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub struct PrivatePg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The (uid, gid) the server runs as, when we are root.
    run_as: Option<(u32, u32)>,
}

/// How `pg_ctl stop` ends the server.
#[derive(Debug, Clone, Copy)]
pub enum StopMode {
    /// Sessions are disconnected, committed work is checkpointed.
    Fast,
    /// Every server process is killed at once, as in a crash: the next
    /// start runs crash recovery from the WAL.
    Immediate,
}

impl PrivatePg {
    /// initdb in a fresh folder under the temp dir, then start. Panics with
    /// a clear message when no server binaries are installed.
    pub fn start_new() -> PrivatePg {
        let bin = server_binaries().expect(
            "PostgreSQL server binaries (initdb, pg_ctl) are needed: not on PATH nor in \
             /usr/lib/postgresql/*/bin (apt-get install postgresql)",
        );
        let run_as = run_as();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Short: the Unix socket lives in it and its path is limited to 107 bytes.
        let dir = std::env::temp_dir().join(format!("snt-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the cluster's folder");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown cluster folder");
        }
        let port = free_port();
        let pg = PrivatePg {
            dir,
            bin,
            port,
            run_as,
        };
        let data = pg.data();
        pg.run(
            pg.command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["--auth=trust", "-U", "postgres", "--encoding=UTF8"])
                .args(["--no-locale", "--no-sync"]),
            "initdb",
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             max_connections = 200\nfsync = on\nsynchronous_commit = on\ntimezone = 'UTC'\n",
            pg.dir.display()
        );
        let path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).expect("reading postgresql.conf");
        text.push_str(&conf);
        // Rewriting in place keeps the file's owner.
        std::fs::write(&path, text).expect("writing postgresql.conf");
        pg.start();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    pub fn start(&self) {
        let log = self.dir.join("postgres.log");
        self.run(
            self.command("pg_ctl")
                .arg("start")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60"]),
            "pg_ctl start",
        );
    }

    /// `pg_ctl stop -w`: returns once the server is gone.
    pub fn stop(&self, mode: StopMode) {
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        self.run(
            self.command("pg_ctl")
                .arg("stop")
                .arg("-D")
                .arg(self.data())
                .args(["-m", mode, "-w", "-t", "60"]),
            "pg_ctl stop",
        );
    }

    /// Whether something accepts TCP connections on the cluster's port.
    pub fn accepting(&self) -> bool {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_millis(500),
        )
        .is_ok()
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .env_remove("PGDATA");
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&self, cmd: &mut Command, what: &str) -> Output {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("running {what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}{}\n--- server log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
        );
        out
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The folder holding initdb and pg_ctl: PATH first, then the highest
/// version under /usr/lib/postgresql.
fn server_binaries() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // Follow a symlinked initdb (/usr/local/bin/initdb) to the real
            // folder: pg_ctl looks for `postgres` beside itself.
            let real = std::fs::canonicalize(dir.join("initdb")).ok();
            if let Some(real) = real.as_deref().and_then(Path::parent)
                && has(real)
            {
                return Some(real.to_path_buf());
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// As root: the `postgres` user's (uid, gid); otherwise None (we run it).
fn run_as() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres"))
        .expect(
            "running as root, so PostgreSQL must run as the `postgres` user, which does not exist",
        );
    let uid = entry
        .get(2)
        .and_then(|u| u.parse().ok())
        .expect("postgres uid");
    let gid = entry
        .get(3)
        .and_then(|g| g.parse().ok())
        .expect("postgres gid");
    Some((uid, gid))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
