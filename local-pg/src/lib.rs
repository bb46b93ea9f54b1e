//! A private PostgreSQL cluster for development and tests: the one
//! implementation, used by `fraudctl` (`pg up/down/status`, `demo` without
//! `DATABASE_URL`, and so `scripts/test`'s fallback) and, through
//! [`scratch::PrivatePg`], by the tests that stop and restart a database of
//! their own. A crate of its own so that fraudctl gets it without linking
//! any test code, and the tests get it without linking the CLI.
//!
//! [`up`] keeps a whole PostgreSQL cluster in one folder (`.sentinel/pg` for
//! `fraudctl pg up`):
//!
//! ```text
//! <dir>/data/                the cluster (PGDATA), made by initdb on first use
//! <dir>/data/sentinel.conf   our server settings, rewritten on every start
//!                            and included from postgresql.conf
//! <dir>/port                 the TCP port it listens on, 127.0.0.1 only
//! <dir>/postgres.log         the server log
//! <dir>/.s.PGSQL.<port>      its Unix socket (left out when <dir> is too long)
//! <dir>/.lock                held while `up` / `down` run, so callers queue
//! ```
//!
//! The server binaries (initdb, pg_ctl, postgres) come from PATH or else from
//! `/usr/lib/postgresql/<version>/bin`, highest version first; an existing
//! cluster is always run by the major version that made it. As root with
//! apt-get they are installed when missing. PostgreSQL refuses to run as root,
//! so as root the cluster belongs to, and runs as, the `postgres` user (or a
//! `sentinel-pg` system user created for it when there is no `postgres`).
//!
//! Authentication is `trust` (superuser `postgres`, no password) and the
//! server listens on 127.0.0.1 only: this is a development and test cluster.
//! It is still durable like production (fsync and synchronous_commit stay on)
//! because durability is part of what the tests check.
//!
//! Whether it runs is decided from `postmaster.pid` *and* the process it
//! names: after a machine restart that pid may belong to something else, and
//! such a stale file is removed before starting.

use anyhow::{Context, bail};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod scratch;

const DATA_DIR: &str = "data";
const PORT_FILE: &str = "port";
const LOG_FILE: &str = "postgres.log";
const LOCK_FILE: &str = ".lock";
const CONF_FILE: &str = "sentinel.conf";
const PID_FILE: &str = "postmaster.pid";
const SUPERUSER: &str = "postgres";
/// The OS user made to own the cluster when running as root and there is no
/// `postgres` user.
const FALLBACK_OS_USER: &str = "sentinel-pg";
const LIB_ROOT: &str = "/usr/lib/postgresql";
/// `sun_path` holds 108 bytes with its NUL; the socket is `<dir>/.s.PGSQL.<port>`.
const MAX_SOCKET_DIR_LEN: usize = 107 - ".s.PGSQL.65535".len() - 1;
/// Settings for a development and test cluster. Every `#[sqlx::test]` makes
/// its own database and tests run in parallel, hence the connections; fsync
/// and synchronous_commit stay on on purpose.
const SETTINGS: &str = "\
max_connections = 300
shared_buffers = 128MB
fsync = on
synchronous_commit = on
full_page_writes = on
max_wal_size = 2GB
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
";

/// Start the cluster in `dir` (initdb on first use) unless it already runs,
/// and return its URL.
pub fn up(dir: &Path) -> anyhow::Result<String> {
    let dir = absolute_dir(dir, true)?;
    let _lock = lock(&dir)?;
    let data = dir.join(DATA_DIR);

    if let Some(port) = live_port(&dir)? {
        wait_accepting(port, Duration::from_secs(60))?;
        eprintln!(
            "PostgreSQL already running in {} on 127.0.0.1:{port}",
            dir.display()
        );
        return Ok(url(port));
    }
    clear_stale(&dir)?;

    let made_by = cluster_major(&data)?;
    let bin = match choose_binaries(&system_binaries(), made_by.as_deref()) {
        Ok(bin) => bin,
        Err(e) if made_by.is_none() && can_install() => {
            eprintln!("{e:#}");
            install_postgresql()?;
            choose_binaries(&system_binaries(), None)?
        }
        Err(e) => return Err(e),
    };

    let run_as = run_as_for(&data)?;
    if let Some(user) = &run_as {
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("giving {} to the `{}` user", dir.display(), user.name))?;
        check_reachable(user, &dir)?;
    }

    if made_by.is_none() {
        initdb(&bin, &data, run_as.as_ref())?;
    }

    let previous = read_port_file(&dir)?;
    let mut port = match previous {
        Some(p) if port_is_free(p) => p,
        _ => free_port()?,
    };
    let mut attempt = 1;
    loop {
        write_settings(&dir, &data, port, run_as.as_ref())?;
        eprintln!(
            "starting PostgreSQL {} in {} on 127.0.0.1:{port} (log: {})",
            bin.major.as_deref().unwrap_or("?"),
            dir.display(),
            dir.join(LOG_FILE).display()
        );
        match start(&bin, &dir, run_as.as_ref()) {
            Ok(()) => break,
            Err(e) if attempt < 5 && format!("{e:#}").contains("Address already in use") => {
                eprintln!("port {port} was taken meanwhile; trying another");
                port = free_port()?;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
    write_owned(&dir.join(PORT_FILE), &format!("{port}\n"), run_as.as_ref())?;
    wait_accepting(port, Duration::from_secs(30))?;
    Ok(url(port))
}

/// How [`stop`] ends the server (`pg_ctl stop -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Sessions are disconnected, committed work is checkpointed.
    Fast,
    /// Every server process is killed at once, as in a crash: the next
    /// start runs crash recovery from the WAL.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Stop the cluster in `dir` (fast shutdown: sessions are disconnected,
/// committed work is kept). Fine if it does not run or does not exist.
pub fn down(dir: &Path) -> anyhow::Result<()> {
    stop(dir, StopMode::Fast)
}

/// Stop the cluster in `dir` the way `mode` says and wait until it is gone.
/// Fine if it does not run or does not exist.
pub fn stop(dir: &Path, mode: StopMode) -> anyhow::Result<()> {
    let dir = absolute_dir(dir, false)?;
    if !dir.join(DATA_DIR).is_dir() {
        eprintln!(
            "PostgreSQL not running ({} holds no cluster)",
            dir.display()
        );
        return Ok(());
    }
    let _lock = lock(&dir)?;
    if live_port(&dir)?.is_none() {
        eprintln!("PostgreSQL not running in {}", dir.display());
        return Ok(());
    }
    let data = dir.join(DATA_DIR);
    let bin = choose_binaries(&system_binaries(), cluster_major(&data)?.as_deref())?;
    let run_as = run_as_for(&data)?;
    eprintln!("stopping PostgreSQL in {}", dir.display());
    let mut cmd = pg_command(&bin.path("pg_ctl"), run_as.as_ref(), &dir);
    cmd.arg("stop")
        .arg("-D")
        .arg(&data)
        .args(["-m", mode.as_arg(), "-w", "-t", "120"]);
    run(&mut cmd, "pg_ctl stop")?;
    Ok(())
}

/// The URL of the cluster in `dir` if it runs.
pub fn running_url(dir: &Path) -> anyhow::Result<Option<String>> {
    let dir = absolute_dir(dir, false)?;
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(live_port(&dir)?.map(url))
}

fn url(port: u16) -> String {
    format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres")
}

/// `dir` as an absolute path (relative to the current directory), created
/// and canonicalised when `create`.
fn absolute_dir(dir: &Path, create: bool) -> anyhow::Result<PathBuf> {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(dir)
    };
    if create {
        fs::create_dir_all(&abs).with_context(|| format!("creating {}", abs.display()))?;
    }
    match fs::canonicalize(&abs) {
        Ok(path) => Ok(path),
        Err(e) if e.kind() == ErrorKind::NotFound && !create => Ok(abs),
        Err(e) => Err(e).with_context(|| format!("resolving {}", abs.display())),
    }
}

/// An exclusive lock on `<dir>/.lock`, released when dropped.
fn lock(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .or_else(|_| File::open(&path))
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        eprintln!("waiting for another fraudctl using {}", dir.display());
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}

// ---------------------------------------------------------------------------
// Is it running?

/// The port of the postmaster serving `<dir>/data`, if one is alive.
fn live_port(dir: &Path) -> anyhow::Result<Option<u16>> {
    let data = dir.join(DATA_DIR);
    let pid_path = data.join(PID_FILE);
    let text = match fs::read_to_string(&pid_path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", pid_path.display())),
    };
    let Some(pid_file) = parse_pid_file(&text) else {
        // Being written right now, or garbage: not a usable server either way.
        return Ok(None);
    };
    if !is_postmaster_of(pid_file.pid, &data) {
        return Ok(None);
    }
    match pid_file.port.or(read_port_file(dir)?) {
        Some(port) => Ok(Some(port)),
        None => bail!(
            "PostgreSQL runs in {} (pid {}) but its port is unknown",
            dir.display(),
            pid_file.pid
        ),
    }
}

#[derive(Debug, PartialEq)]
struct PidFile {
    pid: u32,
    port: Option<u16>,
}

/// `postmaster.pid`: line 1 the pid, line 4 the port (see PostgreSQL's
/// `pidfile.h`). A single-user backend writes a negative pid.
fn parse_pid_file(text: &str) -> Option<PidFile> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().trim_start_matches('-').parse().ok()?;
    let port = lines.nth(2).and_then(parse_port);
    Some(PidFile { pid, port })
}

fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse().ok().filter(|&port| port != 0)
}

fn read_port_file(dir: &Path) -> anyhow::Result<Option<u16>> {
    let path = dir.join(PORT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(parse_port(&text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Whether process `pid` is the postmaster of `data`. After a restart the
/// pid in a left-over `postmaster.pid` may name any process, even another
/// PostgreSQL; the postmaster's working directory is its data directory.
fn is_postmaster_of(pid: u32, data: &Path) -> bool {
    if !Path::new("/proc/self").exists() {
        // Not Linux: the best we can do is ask whether the pid lives.
        return Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        return false;
    }
    if let (Ok(cwd), Ok(data)) = (fs::metadata(proc_dir.join("cwd")), fs::metadata(data)) {
        return cwd.dev() == data.dev() && cwd.ino() == data.ino();
    }
    // The working directory is not ours to read: look at the command line.
    match fs::read(proc_dir.join("cmdline")) {
        Ok(cmdline) => {
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let data = data.as_os_str().as_encoded_bytes();
            let is_postgres = args.first().is_some_and(|argv0| {
                argv0.ends_with(b"postgres") || argv0.ends_with(b"postmaster")
            });
            is_postgres && args.contains(&data)
        }
        // Unknown: assume it lives rather than delete a live server's files.
        Err(e) => e.kind() != ErrorKind::NotFound,
    }
}

/// Remove a stale `postmaster.pid` and socket lock files. Only called while
/// holding the lock and after [`live_port`] found no live server.
fn clear_stale(dir: &Path) -> anyhow::Result<()> {
    let data = dir.join(DATA_DIR);
    let pid_path = data.join(PID_FILE);
    if pid_path.exists() {
        // Removing the file would defeat PostgreSQL's own guard against
        // starting beside orphaned backends of a crashed postmaster; those
        // also work in the data directory.
        let orphans = processes_in(&data);
        if !orphans.is_empty() {
            bail!(
                "old PostgreSQL processes still use {} (pids {orphans:?}) although its postmaster is \
                 gone; wait for them to exit or kill them, then retry",
                data.display()
            );
        }
        eprintln!(
            "removing stale {} (its server is gone: crash or machine restart)",
            pid_path.display()
        );
        fs::remove_file(&pid_path).with_context(|| format!("removing {}", pid_path.display()))?;
    }
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".s.PGSQL.") {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Processes whose working directory is `dir` (those we may inspect).
fn processes_in(dir: &Path) -> Vec<u32> {
    let (Ok(target), Ok(entries)) = (fs::metadata(dir), fs::read_dir("/proc")) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cwd = fs::metadata(entry.path().join("cwd")).ok()?;
            (cwd.dev() == target.dev() && cwd.ino() == target.ino()).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn wait_accepting(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("PostgreSQL does not accept connections on {addr} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------
// Binaries

#[derive(Debug, Clone, PartialEq)]
struct Binaries {
    /// Folder holding initdb, pg_ctl and postgres.
    dir: PathBuf,
    /// Major version: "15", or "9.6" before PostgreSQL 10.
    major: Option<String>,
}

impl Binaries {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

const SERVER_BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Every usable set of server binaries here: PATH first, in PATH order, then
/// `/usr/lib/postgresql/*/bin`, highest version first.
fn system_binaries() -> Vec<Binaries> {
    let path = std::env::var_os("PATH");
    discover(path.as_deref(), Path::new(LIB_ROOT), &|dir| {
        let out = Command::new(dir.join("postgres"))
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        major_of(&String::from_utf8_lossy(&out.stdout))
    })
}

fn discover(
    path: Option<&OsStr>,
    lib_root: &Path,
    version_of: &dyn Fn(&Path) -> Option<String>,
) -> Vec<Binaries> {
    let mut found: Vec<Binaries> = Vec::new();
    let mut push = |dir: PathBuf, major: Option<String>| {
        if !found.iter().any(|b| b.dir == dir) {
            found.push(Binaries { dir, major });
        }
    };
    for entry in path.map(std::env::split_paths).into_iter().flatten() {
        // Follow a symlinked initdb (e.g. /usr/local/bin/initdb) to the real
        // folder: pg_ctl looks for postgres beside itself.
        let Ok(real) = fs::canonicalize(entry.join("initdb")) else {
            continue;
        };
        let Some(dir) = real.parent().map(Path::to_path_buf) else {
            continue;
        };
        if has_server_binaries(&dir) {
            let major = major_from_lib_dir(&dir, lib_root).or_else(|| version_of(&dir));
            push(dir, major);
        }
    }
    let mut versioned: Vec<(Vec<u32>, String, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir(lib_root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = version_key(&name) else {
                continue;
            };
            let dir = entry.path().join("bin");
            if has_server_binaries(&dir) {
                let dir = fs::canonicalize(&dir).unwrap_or(dir);
                versioned.push((key, name, dir));
            }
        }
    }
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, major, dir) in versioned {
        push(dir, Some(major));
    }
    found
}

/// The first set of binaries, or the first of major version `want`.
fn choose_binaries(found: &[Binaries], want: Option<&str>) -> anyhow::Result<Binaries> {
    let chosen = match want {
        None => found.first(),
        Some(want) => found.iter().find(|b| b.major.as_deref() == Some(want)),
    };
    if let Some(bin) = chosen {
        return Ok(bin.clone());
    }
    let package = want.map_or_else(|| "postgresql".to_owned(), |v| format!("postgresql-{v}"));
    let install = if can_install() || effective_uid().is_ok_and(|uid| uid == 0) {
        format!("apt-get update && apt-get install -y {package}")
    } else {
        format!("sudo apt-get update && sudo apt-get install -y {package}")
    };
    match want {
        None => bail!(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) are not on PATH nor in \
             {LIB_ROOT}/*/bin; install them with `{install}` (or your system's package manager), \
             or put the folder holding them on PATH"
        ),
        Some(want) => {
            let have: Vec<String> = found
                .iter()
                .map(|b| {
                    format!(
                        "{} ({})",
                        b.major.as_deref().unwrap_or("unknown version"),
                        b.dir.display()
                    )
                })
                .collect();
            bail!(
                "this cluster was made by PostgreSQL {want}, whose server binaries are not installed \
                 (found: {}); install them with `{install}`, or delete the cluster's folder to start afresh",
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.join(", ")
                }
            )
        }
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    SERVER_BINARIES
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// "15" from `/usr/lib/postgresql/15/bin`.
fn major_from_lib_dir(dir: &Path, lib_root: &Path) -> Option<String> {
    let version = dir.strip_prefix(lib_root).ok()?.parent()?;
    let name = version.to_str()?;
    version_key(name).map(|_| name.to_owned())
}

/// "9.6" -> [9, 6]; "15" -> [15]; anything else is not a version folder.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The major version in `postgres --version` output ("postgres (PostgreSQL)
/// 15.14 (Debian 15.14-0+deb12u1)" -> "15"; 9.6.24 -> "9.6"), or in a
/// `PG_VERSION` file ("15").
fn major_of(text: &str) -> Option<String> {
    let text = text.trim();
    let version = match text.find("(PostgreSQL)") {
        Some(at) => text[at + "(PostgreSQL)".len()..]
            .split_whitespace()
            .next()?,
        None => text,
    };
    let parts: Vec<&str> = version
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .collect();
    let first: u32 = parts.first()?.parse().ok()?;
    if first >= 10 {
        Some(first.to_string())
    } else {
        Some(format!("{first}.{}", parts.get(1)?))
    }
}

/// The major version that made the cluster in `data`, if there is one.
fn cluster_major(data: &Path) -> anyhow::Result<Option<String>> {
    let path = data.join("PG_VERSION");
    match fs::read_to_string(&path) {
        Ok(text) => match major_of(&text) {
            Some(major) => Ok(Some(major)),
            None => bail!("cannot read the version in {}", path.display()),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn can_install() -> bool {
    effective_uid().is_ok_and(|uid| uid == 0) && find_in_path("apt-get").is_some()
}

fn install_postgresql() -> anyhow::Result<()> {
    eprintln!("installing PostgreSQL with apt-get (a minute or two)");
    for args in [&["update"][..], &["install", "-y", "postgresql"][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
    }
    Ok(())
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

// ---------------------------------------------------------------------------
// Who runs it

/// The unprivileged OS user that owns and runs the cluster.
#[derive(Debug, Clone, PartialEq)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

fn effective_uid() -> anyhow::Result<u32> {
    if let Ok(meta) = fs::metadata("/proc/self") {
        return Ok(meta.uid());
    }
    let out = Command::new("id")
        .arg("-u")
        .output()
        .context("running `id -u`")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("reading the output of `id -u`")
}

/// None when we are not root: then we run the cluster ourselves. As root:
/// the owner of an existing cluster, else `postgres`, else `sentinel-pg`
/// (created here).
fn run_as_for(data: &Path) -> anyhow::Result<Option<RunAs>> {
    if effective_uid()? != 0 {
        return Ok(None);
    }
    if let Ok(meta) = fs::metadata(data)
        && meta.uid() != 0
    {
        let name = lookup_user(&meta.uid().to_string())?
            .map(|u| u.name)
            .unwrap_or_else(|| meta.uid().to_string());
        return Ok(Some(RunAs {
            name,
            uid: meta.uid(),
            gid: meta.gid(),
        }));
    }
    if let Some(user) = lookup_user(SUPERUSER)? {
        return Ok(Some(user));
    }
    if let Some(user) = lookup_user(FALLBACK_OS_USER)? {
        return Ok(Some(user));
    }
    eprintln!(
        "creating system user `{FALLBACK_OS_USER}` to run PostgreSQL (it refuses to run as root)"
    );
    let mut cmd = Command::new("useradd");
    cmd.args([
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        FALLBACK_OS_USER,
    ]);
    run(&mut cmd, "useradd")?;
    lookup_user(FALLBACK_OS_USER)?
        .with_context(|| format!("user `{FALLBACK_OS_USER}` still unknown after useradd"))
        .map(Some)
}

/// A user by name or numeric uid, through NSS (`getent`) or `/etc/passwd`.
fn lookup_user(key: &str) -> anyhow::Result<Option<RunAs>> {
    if let Ok(out) = Command::new("getent")
        .args(["passwd", key])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        match out.status.code() {
            Some(0) => {
                return Ok(find_passwd_entry(
                    &String::from_utf8_lossy(&out.stdout),
                    key,
                ));
            }
            Some(2) => return Ok(None), // getent: key not found
            _ => {}
        }
    }
    let text = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    Ok(find_passwd_entry(&text, key))
}

/// The `passwd(5)` entry whose name (or uid, when `key` is numeric) is `key`.
fn find_passwd_entry(text: &str, key: &str) -> Option<RunAs> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let (name, uid, gid) = (*fields.first()?, fields.get(2)?, fields.get(3)?);
        if name != key && *uid != key {
            return None;
        }
        Some(RunAs {
            name: name.to_owned(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    })
}

/// Fail clearly when `user` cannot reach `dir` (every parent needs `x`).
/// Checked by the kernel, as that user, so ACLs and groups count.
fn check_reachable(user: &RunAs, dir: &Path) -> anyhow::Result<()> {
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        r#"for d do if [ ! -x "$d" ]; then printf '%s' "$d"; exit 1; fi; done"#,
        "sh",
    ])
    .args(&ancestors)
    .current_dir("/")
    .stdin(Stdio::null())
    .uid(user.uid)
    .gid(user.gid);
    let out = cmd.output().context("checking folder permissions")?;
    if out.status.success() {
        return Ok(());
    }
    let blocked = String::from_utf8_lossy(&out.stdout).into_owned();
    if blocked.is_empty() {
        bail!(
            "cannot check whether the `{}` user can reach {}: {}",
            user.name,
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    bail!(
        "PostgreSQL refuses to run as root, so the cluster in {dir} runs as the `{user}` user, \
         but `{user}` cannot enter {blocked}. Allow it with `chmod o+x {blocked}`, or pass \
         --dir with a folder it can reach (e.g. /var/tmp/sentinel-pg).",
        dir = dir.display(),
        user = user.name,
    )
}

fn pg_command(program: &Path, run_as: Option<&RunAs>, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .env_remove("PGDATA");
    if let Some(user) = run_as {
        // std drops supplementary groups when root changes uid.
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

/// Run to completion; on failure the error carries the command's output.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Write a file and, as root, give it to the cluster's user.
fn write_owned(path: &Path, text: &str, run_as: Option<&RunAs>) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// initdb and start

fn initdb(bin: &Binaries, data: &Path, run_as: Option<&RunAs>) -> anyhow::Result<()> {
    let dir = data.parent().unwrap_or(data);
    eprintln!(
        "creating a PostgreSQL {} cluster in {}{}",
        bin.major.as_deref().unwrap_or("?"),
        data.display(),
        run_as
            .map(|u| format!(" owned by `{}`", u.name))
            .unwrap_or_default()
    );
    let mut cmd = pg_command(&bin.path("initdb"), run_as, dir);
    cmd.arg("-D").arg(data).args([
        "--auth=trust",
        "-U",
        SUPERUSER,
        "--encoding=UTF8",
        "--no-locale",
    ]);
    run(&mut cmd, "initdb")?;
    let conf = data.join("postgresql.conf");
    let mut text =
        fs::read_to_string(&conf).with_context(|| format!("reading {}", conf.display()))?;
    text.push_str(&format!(
        "\n# Sentinel: this development cluster's settings, rewritten by `fraudctl pg up`.\n\
         include_if_exists = '{CONF_FILE}'\n"
    ));
    // Rewriting in place keeps the file's owner.
    fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))
}

fn write_settings(
    dir: &Path,
    data: &Path,
    port: u16,
    run_as: Option<&RunAs>,
) -> anyhow::Result<()> {
    let socket_dir = dir.to_string_lossy();
    let sockets = if socket_dir.len() <= MAX_SOCKET_DIR_LEN && !socket_dir.contains([',', '"']) {
        conf_quote(&socket_dir)
    } else {
        eprintln!("{socket_dir} is too long for a Unix socket path; TCP only");
        "''".to_owned()
    };
    let text = format!(
        "# Written by `fraudctl pg up` on every start: edits here are lost.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = {sockets}\n\
         {SETTINGS}"
    );
    write_owned(&data.join(CONF_FILE), &text, run_as)
}

/// A `postgresql.conf` string literal.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn start(bin: &Binaries, dir: &Path, run_as: Option<&RunAs>) -> anyhow::Result<()> {
    let data = dir.join(DATA_DIR);
    let log = dir.join(LOG_FILE);
    let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut cmd = pg_command(&bin.path("pg_ctl"), run_as, dir);
    cmd.arg("start")
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "120"]);
    let out = cmd.output().context("running pg_ctl start")?;
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "pg_ctl start failed ({}):\n{}{}\n--- {} ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        log.display(),
        read_from(&log, log_start)
    )
}

/// The log from byte `offset` on, at most its last 4 KiB.
fn read_from(path: &Path, offset: u64) -> String {
    let mut text = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let from = offset.max(len.saturating_sub(4096));
        if file.seek(SeekFrom::Start(from)).is_ok() {
            let _ = file.read_to_end(&mut text);
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A folder under the system temp dir, removed on drop (after stopping
    /// any cluster in it).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(what: &str) -> anyhow::Result<TempDir> {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos();
            let name = format!(
                "sentinel-{what}-{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            fs::create_dir_all(&path)?;
            Ok(TempDir(path))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            if self.0.join(DATA_DIR).exists() {
                let _ = down(&self.0);
            }
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn touch_executable(path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, "")?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    #[test]
    fn port_file_parsing() {
        assert_eq!(parse_port("54321\n"), Some(54321));
        assert_eq!(parse_port("  5432 "), Some(5432));
        assert_eq!(parse_port(""), None);
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port("port=5432"), None);
    }

    #[test]
    fn pid_file_parsing() {
        let text = "4242\n/x/data\n1732406400\n54321\n/x\n127.0.0.1\n  1234  5678\nready   \n";
        assert_eq!(
            parse_pid_file(text),
            Some(PidFile {
                pid: 4242,
                port: Some(54321)
            })
        );
        // Still being written at startup: no port yet.
        assert_eq!(
            parse_pid_file("4242\n/x/data\n"),
            Some(PidFile {
                pid: 4242,
                port: None
            })
        );
        // A single-user backend writes its pid negated.
        assert_eq!(
            parse_pid_file("-77\n/x/data\n1\n5432\n").map(|p| p.pid),
            Some(77)
        );
        assert_eq!(parse_pid_file(""), None);
        assert_eq!(parse_pid_file("garbage\n"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(
            major_of("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(
            major_of("postgres (PostgreSQL) 17beta2").as_deref(),
            Some("17")
        );
        assert_eq!(
            major_of("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(major_of("15\n").as_deref(), Some("15"));
        assert_eq!(major_of("9.6\n").as_deref(), Some("9.6"));
        assert_eq!(major_of("nonsense"), None);
        assert_eq!(version_key("9.6"), Some(vec![9, 6]));
        assert_eq!(version_key("16"), Some(vec![16]));
        assert_eq!(version_key("16-old"), None);
    }

    #[test]
    fn passwd_entries() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n\
                    broken line\n";
        let postgres = RunAs {
            name: "postgres".into(),
            uid: 101,
            gid: 104,
        };
        assert_eq!(find_passwd_entry(text, "postgres"), Some(postgres.clone()));
        assert_eq!(find_passwd_entry(text, "101"), Some(postgres));
        assert_eq!(find_passwd_entry(text, "nobody"), None);
    }

    #[test]
    fn users_are_looked_up() -> anyhow::Result<()> {
        let root = lookup_user("root")?.context("root exists")?;
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_user("0")?.map(|u| u.name).as_deref(), Some("root"));
        assert_eq!(lookup_user("no-such-user-sentinel")?, None);
        Ok(())
    }

    #[test]
    fn conf_strings_are_quoted() {
        assert_eq!(conf_quote("/tmp/pg"), "'/tmp/pg'");
        assert_eq!(conf_quote("/tmp/it's"), "'/tmp/it''s'");
        assert_eq!(conf_quote(r"C:\pg"), r"'C:\\pg'");
    }

    #[test]
    fn binary_discovery() -> anyhow::Result<()> {
        let tmp = TempDir::new("discovery")?;
        let lib = tmp.0.join("lib");
        for version in ["9.6", "14", "16"] {
            for name in SERVER_BINARIES {
                touch_executable(&lib.join(version).join("bin").join(name))?;
            }
        }
        // Incomplete (no postgres) and not a version: both ignored.
        touch_executable(&lib.join("17/bin/initdb"))?;
        touch_executable(&lib.join("17/bin/pg_ctl"))?;
        touch_executable(&lib.join("latest/bin/initdb"))?;
        // On PATH: a folder of symlinks into version 14, and a custom build.
        let links = tmp.0.join("links");
        fs::create_dir_all(&links)?;
        for name in SERVER_BINARIES {
            std::os::unix::fs::symlink(lib.join("14/bin").join(name), links.join(name))?;
            touch_executable(&tmp.0.join("custom").join(name))?;
        }
        // Present but not executable: ignored.
        fs::create_dir_all(tmp.0.join("noexec"))?;
        for name in SERVER_BINARIES {
            fs::write(tmp.0.join("noexec").join(name), "")?;
        }
        let path = std::env::join_paths([
            tmp.0.join("empty"),
            tmp.0.join("noexec"),
            links.clone(),
            tmp.0.join("custom"),
        ])?;
        let version_of = |dir: &Path| dir.ends_with("custom").then(|| "18".to_owned());
        let found = discover(Some(&path), &lib, &version_of);
        let summary: Vec<(PathBuf, Option<&str>)> = found
            .iter()
            .map(|b| (b.dir.clone(), b.major.as_deref()))
            .collect();
        let lib = fs::canonicalize(&lib)?;
        assert_eq!(
            summary,
            vec![
                (lib.join("14/bin"), Some("14")),
                (fs::canonicalize(tmp.0.join("custom"))?, Some("18")),
                (lib.join("16/bin"), Some("16")),
                (lib.join("9.6/bin"), Some("9.6")),
            ]
        );

        // PATH wins; a cluster made by 16 gets 16; a version that is not
        // installed is an error saying how to install it.
        assert_eq!(choose_binaries(&found, None)?.dir, lib.join("14/bin"));
        assert_eq!(choose_binaries(&found, Some("16"))?.dir, lib.join("16/bin"));
        let err = format!(
            "{:#}",
            choose_binaries(&found, Some("13"))
                .err()
                .context("13 is not installed")?
        );
        assert!(err.contains("postgresql-13"), "{err}");

        // Without PATH: highest version first.
        let found = discover(None, &lib, &version_of);
        assert_eq!(
            found.first().map(|b| b.dir.clone()),
            Some(lib.join("16/bin"))
        );

        // Nothing at all: the error names the command to run.
        let err = format!(
            "{:#}",
            choose_binaries(&[], None)
                .err()
                .context("nothing is installed")?
        );
        assert!(err.contains("apt-get install -y postgresql"), "{err}");
        Ok(())
    }

    #[test]
    fn stale_pids_are_not_postmasters() -> anyhow::Result<()> {
        let tmp = TempDir::new("stale")?;
        let data = tmp.0.join(DATA_DIR);
        fs::create_dir_all(&data)?;
        // A live process that is not a postmaster of `data`: this test.
        assert!(!is_postmaster_of(std::process::id(), &data));
        // A pid that cannot exist (above Linux's pid_max limit).
        assert!(!is_postmaster_of(99_999_999, &data));
        fs::write(
            data.join(PID_FILE),
            format!("{}\n{}\n0\n5999\n", std::process::id(), data.display()),
        )?;
        assert_eq!(running_url(&tmp.0)?, None);
        Ok(())
    }

    /// Really start, query, restart and stop a cluster.
    #[test]
    fn real_cluster_lifecycle() -> anyhow::Result<()> {
        if system_binaries().is_empty() {
            eprintln!("skipped: no PostgreSQL server binaries here");
            return Ok(());
        }
        let tmp = TempDir::new("local-pg")?;
        let dir = &tmp.0;
        assert_eq!(running_url(dir)?, None);

        let url = up(dir)?;
        assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
        assert_eq!(up(dir)?, url, "up is idempotent");
        assert_eq!(running_url(dir)?, Some(url.clone()));
        let port = read_port_file(dir)?.context("port file")?;
        assert!(url.ends_with(&format!(":{port}/postgres")), "{url}");

        let settings = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                let mut values = Vec::new();
                for show in [
                    "SHOW fsync",
                    "SHOW synchronous_commit",
                    "SHOW max_connections",
                    "SHOW listen_addresses",
                    "SHOW server_encoding",
                ] {
                    let value: String = sqlx::query_scalar(show).fetch_one(&mut conn).await?;
                    values.push(value);
                }
                conn.close().await?;
                anyhow::Ok(values)
            })?;
        assert_eq!(settings, ["on", "on", "300", "127.0.0.1", "UTF8"]);

        down(dir)?;
        assert_eq!(running_url(dir)?, None);
        down(dir)?; // stopping a stopped cluster is fine

        // A machine restart leaves postmaster.pid naming a pid that now
        // belongs to another process: not running, and up still works.
        let data = dir.join(DATA_DIR);
        fs::write(
            data.join(PID_FILE),
            format!("{}\n{}\n0\n{port}\n", std::process::id(), data.display()),
        )?;
        assert_eq!(running_url(dir)?, None);
        assert_eq!(up(dir)?, url, "restarts on its previous port");
        down(dir)?;
        assert_eq!(running_url(dir)?, None);
        Ok(())
    }
}
