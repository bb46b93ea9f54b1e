//! The fraud-operations console at `/console/`, and GraphiQL at `/`.
//!
//! Each page is rendered here as HTML (its header, navigation, headings,
//! forms and empty tables) and filled in by a small plain script
//! (`assets/console/*.js`) that talks only to `/graphql` (queries),
//! `/graphql/ws` (the live `alertRaised` subscription, graphql-transport-ws)
//! and the forwarded actions (`forward`). The data is not rendered here:
//! reading needs the analyst's bearer token, which the browser keeps in
//! `sessionStorage` and sends with each request, never on a navigation.
//!
//! - `/console/`: the alert queue (open alerts newest first, live);
//! - `/console/alerts/{id}`: the case view;
//! - `/console/operations`: throughput, decisions, alerts, lag, data quality;
//! - `/console/policy`: live and shadow versions, their differences, the
//!   shadow comparison, the recorded models and the recorded backtests.
//!
//! Every page goes out with [`security_headers`]: a Content-Security-Policy
//! that allows only this origin.

use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// What a page may load: only this origin.
///
/// - `script-src 'self'`: no inline script, no `eval`. GraphiQL 3 (with
///   CodeMirror 5) needs neither, so no `'unsafe-eval'`; its start-up code
///   is a file (`assets/graphiql-start.js`), not an inline script;
/// - `style-src 'self'`: stylesheets from here only; scripts still set
///   element styles through the CSSOM, which CSP allows (the browser test
///   fails on any violation, so a need for `'unsafe-inline'` would show);
/// - `font-src 'self' data:`: GraphiQL's fonts are inlined in its
///   stylesheet as `data:` URLs; `img-src 'self' data:` likewise for icons;
/// - `connect-src 'self'`: `/graphql`, and `/graphql/ws` (CSP 3 lets
///   `'self'` match `ws:`/`wss:` on the same host);
/// - no framing, no plugins, no `<base>`, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Adds the Content-Security-Policy and its companions to every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The console's pages, for the navigation.
#[derive(Clone, Copy, PartialEq)]
enum Section {
    Queue,
    Case,
    Operations,
    Policy,
}

/// One page: the shared header (navigation, sign-in) around `main`.
fn page(title: &str, section: Section, main: &str, script: &str) -> Html<String> {
    let link = |href: &str, label: &str, s: Section| {
        let current = if s == section {
            r#" aria-current="page""#
        } else {
            ""
        };
        format!(r#"<a href="{href}"{current}>{label}</a>"#)
    };
    let nav = [
        link("/console/", "Alert queue", Section::Queue),
        link("/console/operations", "Operations", Section::Operations),
        link("/console/policy", "Policy and models", Section::Policy),
        r#"<a href="/">GraphQL</a>"#.to_owned(),
    ]
    .join("\n        ");
    Html(format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>{title} · Sentinel</title>
  <link rel="icon" href="/assets/console/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/assets/console/console.css">
  <script src="/assets/console/common.js" defer></script>
  <script src="/assets/console/{script}" defer></script>
</head>
<body>
  <a class="skip" href="#main">Skip to content</a>
  <header class="top">
    <span class="brand">Sentinel</span>
    <nav aria-label="Console">
        {nav}
    </nav>
    <span id="live" class="live" role="status" aria-live="polite"></span>
    <button type="button" id="sign-in" class="ghost">Sign in</button>
  </header>
  <dialog id="token-dialog" aria-labelledby="token-title">
    <form method="dialog" id="token-form">
      <h2 id="token-title">Sign in</h2>
      <p>Paste your bearer token (analyst role). It is kept for this browser tab's session only.</p>
      <label for="token-input">Bearer token</label>
      <input id="token-input" type="password" autocomplete="off" spellcheck="false">
      <p id="token-error" class="error" role="alert"></p>
      <div class="buttons">
        <button type="submit" value="save">Sign in</button>
        <button type="submit" value="clear" class="ghost">Sign out</button>
        <button type="submit" value="cancel" class="ghost">Cancel</button>
      </div>
    </form>
  </dialog>
  <main id="main" tabindex="-1">
{main}
  </main>
</body>
</html>
"##
    ))
}

const QUEUE: &str = r#"    <h1>Alert queue</h1>
    <form id="filters" class="filters" aria-label="Filter alerts">
      <fieldset>
        <legend>Priority</legend>
        <label><input type="checkbox" name="priority" value="P0" checked> P0</label>
        <label><input type="checkbox" name="priority" value="P1" checked> P1</label>
        <label><input type="checkbox" name="priority" value="P2" checked> P2</label>
        <label><input type="checkbox" name="priority" value="P3" checked> P3</label>
      </fieldset>
      <label>Status
        <select name="status">
          <option value="OPEN" selected>Open</option>
          <option value="ACKNOWLEDGED">Acknowledged</option>
          <option value="RESOLVED">Resolved</option>
          <option value="">Any</option>
        </select>
      </label>
      <label>Rule
        <input name="rule" list="rule-names" placeholder="e.g. velocity_count" size="18">
        <datalist id="rule-names"></datalist>
      </label>
      <label>Raised from <input type="datetime-local" name="from"></label>
      <label>to <input type="datetime-local" name="to"></label>
    </form>
    <p class="hint" id="queue-summary" aria-live="polite">Loading…</p>
    <p class="hint">Keys: <kbd>j</kbd> next, <kbd>k</kbd> previous, <kbd>Enter</kbd> open.</p>
    <table id="queue" class="queue" aria-describedby="queue-summary">
      <thead><tr>
        <th scope="col">Priority</th><th scope="col">Raised</th><th scope="col">Customer</th>
        <th scope="col" class="num">Score</th><th scope="col" class="num">Amount</th>
        <th scope="col">Status</th><th scope="col">Rules fired (observed / threshold)</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    <p><button type="button" id="more" class="ghost" hidden>Load more</button></p>"#;

const OPERATIONS: &str = r#"    <h1>Operations</h1>
    <form class="filters" aria-label="Window">
      <label>Window
        <select id="window">
          <option value="LAST_15_MINUTES">Last 15 minutes</option>
          <option value="LAST_HOUR" selected>Last hour</option>
          <option value="LAST_6_HOURS">Last 6 hours</option>
          <option value="LAST_24_HOURS">Last 24 hours</option>
        </select>
      </label>
      <span class="hint" id="ops-updated" aria-live="polite"></span>
    </form>
    <section class="tiles" id="tiles" aria-label="Figures"></section>
    <div class="grid">
      <section aria-labelledby="h-throughput"><h2 id="h-throughput">Throughput (accepted per minute)</h2><div id="chart-throughput" class="chart"></div></section>
      <section aria-labelledby="h-alerts"><h2 id="h-alerts">Alerts (red) and quarantined inputs (blue) per bucket</h2><div id="chart-alerts" class="chart"></div></section>
      <section aria-labelledby="h-decisions"><h2 id="h-decisions">Decisions</h2><div id="chart-decisions" class="chart"></div></section>
      <section aria-labelledby="h-lag"><h2 id="h-lag">Projection lag (events, sampled here)</h2><div id="chart-lag" class="chart"></div></section>
      <section aria-labelledby="h-quality"><h2 id="h-quality">Data quality</h2><div id="quality"></div></section>
      <section aria-labelledby="h-projections"><h2 id="h-projections">Projectors</h2><div id="projections"></div></section>
    </div>"#;

const POLICY: &str = r#"    <h1>Policy and models</h1>
    <section class="panel" aria-labelledby="h-status"><h2 id="h-status">Now</h2><dl id="status" class="facts"></dl></section>
    <section class="panel" aria-labelledby="h-versions"><h2 id="h-versions">Versions</h2>
      <table id="versions"><thead><tr>
        <th scope="col">Version</th><th scope="col">State</th><th scope="col">Model</th>
        <th scope="col">Published</th><th scope="col">By</th>
        <th scope="col">Review / decline at</th><th scope="col">P0 / P1 / P2 / P3 at</th>
        <th scope="col">Expression rules</th>
      </tr></thead><tbody></tbody></table>
    </section>
    <section class="panel" aria-labelledby="h-diff"><h2 id="h-diff">Difference between versions</h2>
      <form id="diff-form" class="filters">
        <label>From <select name="from" id="diff-from"></select></label>
        <label>To <select name="to" id="diff-to"></select></label>
        <button type="submit">Compare</button>
      </form>
      <div id="diff"></div>
    </section>
    <section class="panel" aria-labelledby="h-shadow"><h2 id="h-shadow">Shadow against live</h2><div id="shadow"></div></section>
    <section class="panel" aria-labelledby="h-models"><h2 id="h-models">Models</h2><div id="models"></div></section>
    <section class="panel" aria-labelledby="h-backtests"><h2 id="h-backtests">Backtests</h2>
      <p class="hint">Recorded by <code>fraudctl backtest --record</code>: a draft policy replayed on the recorded traffic beside the baseline; figures against the labels known then.</p>
      <div id="backtests"></div></section>"#;

pub async fn queue() -> Html<String> {
    page("Alert queue", Section::Queue, QUEUE, "queue.js")
}

pub async fn operations() -> Html<String> {
    page(
        "Operations",
        Section::Operations,
        OPERATIONS,
        "operations.js",
    )
}

pub async fn policy() -> Html<String> {
    page("Policy and models", Section::Policy, POLICY, "policy.js")
}

/// The case view of one alert; the id must be a UUID (it is written into
/// the page, so nothing else may be).
pub async fn case(Path(id): Path<String>) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return (
            StatusCode::NOT_FOUND,
            page(
                "No such alert",
                Section::Case,
                r#"    <h1>No such alert</h1><p>An alert id is a UUID. <a href="/console/">Back to the queue</a></p>"#,
                "case.js",
            ),
        )
            .into_response();
    };
    let main = format!(
        r#"    <p><a href="/console/">← Alert queue</a></p>
    <article id="case" data-alert="{id}" aria-busy="true">
      <h1 id="case-title">Alert {id}</h1>
      <p class="hint" id="case-summary">Loading…</p>
      <section aria-labelledby="h-actions" class="actions"><h2 id="h-actions">Actions</h2>
        <form id="act" class="filters">
          <label>Analyst <input name="analyst" id="analyst" required autocomplete="username" size="14"></label>
          <label>Note <input name="note" id="note" size="30"></label>
          <button type="button" id="acknowledge">Acknowledge</button>
          <button type="button" id="fraud" class="danger">Resolve: confirmed fraud</button>
          <button type="button" id="legit">Resolve: false positive</button>
          <button type="button" id="label-fraud" class="ghost">Label transaction fraud</button>
          <button type="button" id="label-legit" class="ghost">Label transaction legitimate</button>
        </form>
        <p id="act-result" role="status" aria-live="polite"></p>
      </section>
      <div class="grid">
        <section aria-labelledby="h-why"><h2 id="h-why">Why</h2><div id="why"></div></section>
        <section aria-labelledby="h-tx"><h2 id="h-tx">Transaction</h2><dl id="tx" class="facts"></dl></section>
        <section aria-labelledby="h-places"><h2 id="h-places">Recent places</h2><div id="places" class="chart"></div></section>
        <section aria-labelledby="h-timeline"><h2 id="h-timeline">Timeline</h2><ol id="timeline" class="timeline"></ol>
          <h3 id="h-history">The customer's stream in the log</h3>
          <ol id="history" class="timeline" aria-labelledby="h-history"></ol>
          <button type="button" id="history-more" class="ghost">Read the customer's log (oldest first)</button></section>
      </div>
    </article>"#
    );
    page("Case", Section::Case, &main, "case.js").into_response()
}

pub async fn to_console() -> Redirect {
    Redirect::permanent("/console/")
}

/// GraphiQL, from the binary, pointed at `/graphql` and `/graphql/ws`
/// (`assets/graphiql-start.js`); `#token=<token>` adds the bearer token.
pub async fn graphiql() -> Html<&'static str> {
    Html(GRAPHIQL)
}

const GRAPHIQL: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Sentinel GraphQL</title>
    <link rel="icon" href="/assets/console/favicon.svg" type="image/svg+xml">
    <link rel="stylesheet" href="/assets/vendor/graphiql.min.css">
    <script src="/assets/vendor/react.production.min.js" defer></script>
    <script src="/assets/vendor/react-dom.production.min.js" defer></script>
    <script src="/assets/vendor/graphiql.min.js" defer></script>
    <script src="/assets/graphiql-start.js" defer></script>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL...</div>
  </body>
</html>
"#;
