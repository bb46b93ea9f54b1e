//! For tests that run a service's binary as a child process (to SIGKILL
//! it): the URL of the test's database and a port to give it.

use sqlx::PgPool;

/// The URL of `pool`'s database (the one `#[sqlx::test]` made), for a
/// child process's `DATABASE_URL`.
pub fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}

/// A port free right now on the loopback, for a child process's address
/// (port 0 would hide from the test which port it took).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
