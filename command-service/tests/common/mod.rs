//! The command side's names for the shared harness (`test-support`): the
//! service on port 0 with its own fresh database, and a client to talk to
//! it. Everything lives in test-support; these aliases keep the test files'
//! vocabulary (`spawn`, `TestApp`).
#![allow(unused_imports)] // each test file uses its own part of it

pub use test_support::command::{
    Command as TestApp, error_fields, spawn_command as spawn, spawn_command_with as spawn_with,
};
pub use test_support::tx;
