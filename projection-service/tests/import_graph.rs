//! The files of `projection-service/src` import each other one way only
//! (see `test_support::imports`).

use std::path::Path;

#[test]
fn projection_service_src_has_no_import_cycles() {
    test_support::imports::assert_no_cycles(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), 30);
}
