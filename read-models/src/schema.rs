//! The PostgreSQL schema names a read model lives under: `rm_{name}` serves
//! queries, `rm_{name}__next` is a rebuild in progress (ADR 0005). Both
//! sides build names only through here.
//!
//! Names are built only from a model's `name` (checked to be `[a-z_]+`),
//! which is why formatting them into SQL is safe.

/// The schema that serves queries.
pub fn serving(name: &str) -> String {
    format!("rm_{name}")
}

/// The schema a rebuild writes into.
pub fn next(name: &str) -> String {
    format!("rm_{name}__next")
}

/// Refuses names that could not be a bare SQL identifier.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("projector name {name:?} must be 1..=40 of [a-z_]"))
    }
}
