//! The command side's names for the shared harness (`test-support`): the
//! service on port 0 with its own fresh database, and a client to talk to
//! it. Everything lives in test-support; these aliases keep the test files'
//! vocabulary (`spawn`, `TestApp`).
#![allow(unused_imports)] // each test file uses its own part of it

pub use test_support::command::{
    Command as TestApp, error_fields, spawn_command as spawn, spawn_command_with as spawn_with,
};
pub use test_support::tx;

use command_service::configuration::Settings;
use command_service::http::auth::Tokens;
use sqlx::PgPool;

/// The service with one bearer token per role (`ingest`, `analyst`,
/// `admin`) instead of the open API.
#[allow(dead_code)] // not every test file needs tokens
pub async fn spawn_with_tokens(pool: PgPool, ingest: &str, analyst: &str, admin: &str) -> TestApp {
    let tokens = format!("{ingest}:ingest,{analyst}:analyst,{admin}:admin");
    let settings = Settings {
        tokens: Tokens::parse(&tokens).expect("tokens"),
        ..Settings::default()
    };
    spawn_with(pool, settings).await
}
