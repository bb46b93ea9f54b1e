//! Every file a browser loads from the query API, compiled into the binary
//! (`include_bytes!`): GraphiQL with the React it runs on (vendored from
//! the npm registry, minified, with their licences, in `query-api/assets/
//! vendor/`) and the console's own script and style (`assets/console/`).
//! Nothing is fetched from a third party at run time, and no front-end
//! build runs: `cargo build` is the whole build (ADR 0017).
//!
//! Served at `/assets/{path}` with a content type, `nosniff` and a short
//! cache (the files change with the binary, so no immutable caching).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    /// Its path under `assets/` (and under `/assets/` on the wire).
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $type:ident),+ $(,)?) => {
        /// Every embedded file (a test checks the folder holds no other).
        pub const ALL: &[Asset] = &[$(Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }),+];
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const SVG: &str = "image/svg+xml";

assets! {
    "vendor/graphiql.min.js" => JS,
    "vendor/graphiql.min.css" => CSS,
    "vendor/graphiql.LICENSE" => TEXT,
    "vendor/react.production.min.js" => JS,
    "vendor/react.LICENSE" => TEXT,
    "vendor/react-dom.production.min.js" => JS,
    "vendor/react-dom.LICENSE" => TEXT,
    "graphiql-start.js" => JS,
    "console/console.css" => CSS,
    "console/common.js" => JS,
    "console/queue.js" => JS,
    "console/case.js" => JS,
    "console/operations.js" => JS,
    "console/policy.js" => JS,
    "console/favicon.svg" => SVG,
}

/// The embedded file at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ALL.iter().find(|a| a.path == path)
}

/// `GET /assets/{*path}`.
pub async fn serve(Path(path): Path<String>) -> Response {
    match find(&path) {
        Some(asset) => {
            let mut response = asset.bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        }
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, TEXT)],
            "no such asset",
        )
            .into_response(),
    }
}
