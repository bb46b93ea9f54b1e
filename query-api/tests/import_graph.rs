//! The files of `query-api/src` import each other one way only (see
//! `test_support::imports`): the GraphQL objects that refer to one another
//! live in `schema/nodes.rs`, the rows and read queries in `read-models`.

use std::path::Path;

#[test]
fn query_api_src_has_no_import_cycles() {
    test_support::imports::assert_no_cycles(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), 40);
}
