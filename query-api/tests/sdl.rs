//! The checked-in SDL (`query-api/schema.graphql`) is the schema the code
//! builds: this fails when they drift. To accept a change of the schema,
//! run `UPDATE_SCHEMA=1 cargo test -p query-api --test sdl` and commit the
//! file.

#[test]
fn the_checked_in_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = query_api::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).expect("write schema.graphql");
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == sdl,
        "query-api/schema.graphql differs from the schema the code builds; run \
         `UPDATE_SCHEMA=1 cargo test -p query-api --test sdl` and commit it"
    );
}
