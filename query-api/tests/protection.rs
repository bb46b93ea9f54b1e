//! What protects the query API, over real HTTP and WebSocket: depth and
//! complexity limits, the page-size cap, coded errors for every kind of bad
//! query, bearer tokens with the analyst role (401, 403), and GraphiQL's
//! own introspection query passing the limits.

mod support;

use event_store::postgres::PgEventStore;
use query_api::auth::Tokens;
use query_api::configuration::Settings;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use support::{Connected, Query, empty_read_models, query_settings, spawn_query};

const INGEST: &str = "ingest-token-0123456789";
const ANALYST: &str = "analyst-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

async fn api(pool: PgPool, settings: Settings) -> Query {
    empty_read_models(&pool).await;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    spawn_query(pool, store, settings).await
}

async fn open_api(pool: PgPool) -> Query {
    api(pool, query_settings()).await
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_query_nested_too_deep_is_refused_with_a_code(pool: PgPool) {
    let q = open_api(pool).await;
    // alert -> customer -> alerts -> alert -> customer -> ... (depth 20).
    let mut inner = "id".to_owned();
    for _ in 0..6 {
        inner = format!("customer {{ alerts(first: 1) {{ nodes {{ {inner} }} }} }}");
    }
    let query = format!("{{ alerts(first: 1) {{ nodes {{ {inner} }} }} }}");
    let a = q.gql(&query, Value::Null).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.codes(), vec!["QUERY_TOO_DEEP"], "{}", a.body);
    assert!(a.body["data"].is_null(), "nothing ran: {}", a.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_query_too_complex_is_refused_with_a_code(pool: PgPool) {
    let q = open_api(pool).await;
    // 500 alerts x 500 transactions each: shallow, but 250,000 rows.
    let query = "{ alerts(first: 500) { nodes { id customer { transactions(first: 500) \
                 { nodes { id amount decision } } } } } }";
    let a = q.gql(query, Value::Null).await;
    assert_eq!(a.codes(), vec!["QUERY_TOO_COMPLEX"], "{}", a.body);
    // The same shape with small pages is fine.
    let query = "{ alerts(first: 20) { nodes { id customer { transactions(first: 10) \
                 { nodes { id amount decision } } } } } }";
    let a = q.gql(query, Value::Null).await;
    assert!(a.codes().is_empty(), "{}", a.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn pages_are_capped_at_500_and_cursors_are_checked(pool: PgPool) {
    let q = open_api(pool).await;
    let a = q
        .gql("{ quarantine(first: 501) { totalCount } }", Value::Null)
        .await;
    assert_eq!(a.codes(), vec!["BAD_USER_INPUT"], "{}", a.body);
    let a = q
        .gql("{ quarantine(first: -1) { totalCount } }", Value::Null)
        .await;
    assert_eq!(a.codes(), vec!["BAD_USER_INPUT"], "{}", a.body);
    let a = q
        .gql(
            "{ alerts(after: \"not-a-cursor\") { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(a.codes(), vec!["BAD_USER_INPUT"], "{}", a.body);
    let a = q
        .gql(
            "{ events(after: \"-3\") { pageInfo { endCursor } } }",
            Value::Null,
        )
        .await;
    assert_eq!(a.codes(), vec!["BAD_USER_INPUT"], "{}", a.body);
    let a = q
        .gql(
            "{ events(types: [\"NoSuchEvent\"]) { pageInfo { endCursor } } }",
            Value::Null,
        )
        .await;
    assert_eq!(a.codes(), vec!["BAD_USER_INPUT"], "{}", a.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_kind_of_bad_query_has_a_code(pool: PgPool) {
    let q = open_api(pool).await;
    let a = q.gql("{ alerts(first: 1 { id }", Value::Null).await;
    assert_eq!(a.codes(), vec!["GRAPHQL_PARSE_FAILED"], "{}", a.body);
    let a = q
        .gql("subscription { alertRaised { id } }", Value::Null)
        .await;
    assert_eq!(a.codes(), vec!["BAD_REQUEST"], "{}", a.body);
    let a = q.gql("{ noSuchField }", Value::Null).await;
    assert_eq!(a.codes(), vec!["GRAPHQL_VALIDATION_FAILED"], "{}", a.body);
    let a = q
        .gql(
            "query ($n: Int!) { quarantine(first: $n) { totalCount } }",
            json!({"n": "many"}),
        )
        .await;
    assert!(
        a.codes()
            .iter()
            .all(|c| c == "BAD_USER_INPUT" || c == "GRAPHQL_VALIDATION_FAILED"),
        "{}",
        a.body
    );
    assert!(!a.codes().is_empty());
    let a = q
        .gql(
            "{ transaction(id: \"nope\") { id } alert(id: \"00000000-0000-7000-8000-000000000000\") { id } \
             customer(id: \"nobody\") { id } merchant(id: \"none\") { id } projections { name } }",
            Value::Null,
        )
        .await;
    assert_eq!(a.codes(), vec!["NOT_FOUND"; 4], "{}", a.body);
    // Each unknown id is null at its path; the rest of the answer stands.
    let data = &a.body["data"];
    for field in ["transaction", "alert", "customer", "merchant"] {
        assert!(
            data[field].is_null() && data.get(field).is_some(),
            "{}",
            a.body
        );
        let at_path = a.body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["path"] == json!([field]));
        assert!(at_path, "{}", a.body);
    }
    assert_eq!(data["projections"].as_array().expect("list").len(), 7);
    // Not a GraphQL request at all.
    let r = q
        .http
        .post(format!("{}/graphql", q.base))
        .header("content-type", "application/json")
        .body("[1, 2")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn graphiql_introspection_passes_the_limits(pool: PgPool) {
    let q = open_api(pool).await;
    let a = q.gql(INTROSPECTION, Value::Null).await;
    let types = a.data()["__schema"]["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "Alert"));
    let (status, page) = q.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("graphiql"), "{page}");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn tokens_need_the_analyst_role(pool: PgPool) {
    let settings = Settings {
        tokens: Tokens::parse(&format!("{INGEST}:ingest,{ANALYST}:analyst,{ADMIN}:admin"))
            .expect("tokens"),
        ..query_settings()
    };
    let q = api(pool, settings).await;
    let query = "{ projections { name state } }";

    let a = q.gql_as(None, query, Value::Null).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.codes(), vec!["UNAUTHENTICATED"]);
    let a = q.gql_as(Some("wrong-token"), query, Value::Null).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.codes(), vec!["UNAUTHENTICATED"]);
    assert!(!a.body.to_string().contains("wrong-token"));
    let a = q.gql_as(Some(INGEST), query, Value::Null).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.codes(), vec!["FORBIDDEN"]);
    for token in [ANALYST, ADMIN] {
        let a = q.gql_as(Some(token), query, Value::Null).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.data()["projections"].as_array().expect("list").len(), 7);
    }
    // GET as well.
    let r = q
        .http
        .get(format!("{}/graphql?query={{projections{{name}}}}", q.base))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));

    // Health and metrics stay open.
    assert_eq!(q.get("/healthz").await.0, 200);
    assert_eq!(q.get("/metrics").await.0, 200);

    // WebSocket: the token in the upgrade, in connection_init, or refused.
    assert!(matches!(
        q.ws_connect(Some(ANALYST), json!({})).await,
        Connected::Ready(_)
    ));
    assert!(matches!(
        q.ws_connect(None, json!({"Authorization": format!("Bearer {ANALYST}")}))
            .await,
        Connected::Ready(_)
    ));
    assert!(matches!(
        q.ws_connect(Some(INGEST), json!({})).await,
        Connected::Refused(403)
    ));
    match q.ws_connect(None, json!({})).await {
        Connected::Closed(_, reason) => assert!(reason.contains("Unauthorized"), "{reason}"),
        _ => panic!("a WebSocket without a token must be closed"),
    }
    match q.ws_connect(None, json!({"token": INGEST})).await {
        Connected::Closed(_, reason) => assert!(reason.contains("Forbidden"), "{reason}"),
        _ => panic!("an ingest token must not subscribe"),
    }
}

/// The query GraphiQL sends to learn the schema.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;
