//! What a read model declares about itself, and the registry of all seven.
//! projection-service builds its projectors from these declarations and the
//! query API finds the schemas to read from them, so the two sides never
//! keep their own list.

/// A read model's declaration: a named, versioned set of tables in a
/// schema of its own.
#[derive(Debug)]
pub struct Model {
    /// Short, stable, `[a-z_]+`: names the schema `rm_{name}`.
    pub name: &'static str,
    /// Bump when the tables or the fold change: the projection service then
    /// rebuilds the model from the start of the log into fresh tables.
    pub version: u32,
    /// Whether instances may split the work by customer (`--partition i/n`):
    /// only models whose rows are keyed by customer can.
    pub partitioned: bool,
    /// `CREATE TABLE` / `CREATE INDEX` / `CREATE VIEW` statements with bare
    /// names, run once in a fresh schema.
    pub ddl: &'static str,
    /// The tables that make up the read model (compared row for row by the
    /// determinism tests and `fraudctl replay --verify`).
    pub tables: &'static [&'static str],
    /// Secondary indexes the projector itself looks rows up by: a rebuild
    /// creates these with the tables and every other index afterwards.
    pub apply_indexes: &'static [&'static str],
}

/// Every read model, in the order they are started and listed.
pub const ALL: [&Model; 7] = [
    &crate::transactions::MODEL,
    &crate::velocity::MODEL,
    &crate::geo::MODEL,
    &crate::profiles::MODEL,
    &crate::alerts::MODEL,
    &crate::merchants::MODEL,
    &crate::data_quality::MODEL,
];

/// The model called `name`.
pub fn by_name(name: &str) -> Option<&'static Model> {
    ALL.into_iter().find(|m| m.name == name)
}
