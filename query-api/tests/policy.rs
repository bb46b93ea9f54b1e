//! The policy over GraphQL, against real PostgreSQL and real HTTP: a legacy
//! ruleset and policy versions published, shadowed, promoted and rolled
//! back are appended to the log; transactions recorded with the shadow's
//! outcome, alerts (one fired by an expression rule) and labels are
//! projected by the real projectors; then `policies`, `policy`,
//! `policyStatus`, `policyDiff`, `shadowComparison` and a transaction's
//! `shadow` are read over HTTP and checked against the log's times, the
//! domain's diff and the domain's comparison. Recorded backtests
//! (`BacktestRecorded`) are read back by `backtests`.

mod support;

use chrono::{DateTime, Duration, Utc};
use domain::events::{
    AlertRaised, BacktestFigures, BacktestRecorded, PolicyPromoted, PolicyPublished,
    PolicyRolledBack, RulesetPublished, ShadowOutcome, ShadowPolicySet, TransactionLabeled,
    TransactionRecorded,
};
use domain::ids::{AlertId, CustomerId, TransactionId};
use domain::money::{Amount, Currency};
use domain::policy::compare::{Comparison, Verdict};
use domain::rules::{Comparison as Compared, RuleHit, RuleName};
use domain::text::LabelSource;
use domain::{Decision, DomainEvent, Priority, Ruleset, Transaction};
use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use support::{Query, query_settings, spawn_query};
use test_support::projection::{Projection, spawn_projection, wait_all_caught_up};
use uuid::Uuid;

fn day(n: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-07-01T09:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
        + Duration::days(n)
}

/// The default policy under `version`, with the review threshold moved and,
/// with `rule`, one expression rule.
fn policy(version: &str, review: f64, rule: bool, model: Option<&str>) -> Ruleset {
    let mut text = domain::policy::to_toml(&Ruleset::default()).expect("toml");
    if rule {
        text.push_str(
            "\n[[expression_rules]]\nname = \"big_night\"\nexpression = \"f.amount > 900.0 && f.is_night == 1.0\"\nweight = 0.4\ndescription = \"large spend at night\"\n",
        );
    }
    let mut p = domain::policy::from_toml(&text).expect("policy");
    p.version = version.into();
    p.decision.review = review;
    p.model = model.map(str::to_owned);
    p
}

struct Stack {
    pool: PgPool,
    store: Arc<PgEventStore>,
    query: Query,
    _projection: Projection,
}

impl Stack {
    async fn start(pool: PgPool) -> Stack {
        let store = Arc::new(PgEventStore::new(pool.clone()));
        let projection = spawn_projection(pool.clone(), store.clone()).await;
        let query = spawn_query(pool.clone(), store.clone(), query_settings()).await;
        Stack {
            pool,
            store,
            query,
            _projection: projection,
        }
    }

    async fn append(&self, stream: &str, at: DateTime<Utc>, e: impl Into<DomainEvent>) {
        let e = e.into();
        let new = NewEvent::new(
            e.event_type(),
            e.schema_version(),
            at,
            e.to_payload().expect("payload"),
        );
        self.store
            .append(stream, ExpectedVersion::Any, vec![new])
            .await
            .expect("append");
    }

    async fn stream(&self, stream: &str) -> Vec<RecordedEvent> {
        self.store.read_stream(stream, 0, 100).await.expect("read")
    }

    async fn gql(&self, q: &str) -> Value {
        let answer = self.query.gql(q, json!({})).await;
        answer.data().clone()
    }
}

/// One recorded transaction of the comparison: live and shadow verdicts,
/// its latest label.
struct Case {
    id: &'static str,
    at: DateTime<Utc>,
    live: (Decision, Option<Priority>),
    shadow: Option<(&'static str, Decision, Option<Priority>)>,
    labels: &'static [bool],
}

fn cases() -> Vec<Case> {
    use Decision::{Approve, Decline, Review};
    let s = |d, p| Some(("p-2", d, p));
    vec![
        // Only the shadow catches a fraud.
        Case {
            id: "sc-1",
            at: day(0),
            live: (Approve, None),
            shadow: s(Review, Some(Priority::P2)),
            labels: &[true],
        },
        // Only live raises a false alarm (fired by the expression rule).
        Case {
            id: "sc-2",
            at: day(0),
            live: (Review, Some(Priority::P1)),
            shadow: s(Approve, None),
            labels: &[false],
        },
        // Both quiet on a legitimate one.
        Case {
            id: "sc-3",
            at: day(0),
            live: (Approve, None),
            shadow: s(Approve, None),
            labels: &[false],
        },
        // Both catch a fraud.
        Case {
            id: "sc-4",
            at: day(1),
            live: (Decline, Some(Priority::P0)),
            shadow: s(Decline, Some(Priority::P0)),
            labels: &[true],
        },
        // Unlabelled agreement.
        Case {
            id: "sc-5",
            at: day(1),
            live: (Approve, None),
            shadow: s(Approve, None),
            labels: &[],
        },
        // The shadow alerts on one first labelled fraud, then legitimate:
        // the latest label counts.
        Case {
            id: "sc-6",
            at: day(1),
            live: (Approve, None),
            shadow: s(Review, Some(Priority::P3)),
            labels: &[true, false],
        },
        // No shadow was set: not compared.
        Case {
            id: "sc-7",
            at: day(1),
            live: (Approve, None),
            shadow: None,
            labels: &[true],
        },
    ]
}

fn recorded(case: &Case, live_version: &str) -> (TransactionRecorded, Option<AlertRaised>) {
    let t = Transaction::v1(
        TransactionId::parse(case.id).expect("id"),
        CustomerId::parse("sc-c").expect("id"),
        case.at,
        Amount::from_thousandths(50_000),
        Some(Currency::parse("EUR").expect("EUR")),
    );
    let alert = case.live.1.map(|priority| {
        let hit = RuleHit {
            rule: RuleName::parse("big_night"),
            rule_version: 1,
            observed: 1.0,
            comparison: Compared::Holds,
            threshold: 1.0,
            weight: 0.4,
            detail: "f.amount = 950, f.is_night = 1".into(),
        };
        AlertRaised {
            alert_id: AlertId(Uuid::new_v4()),
            transaction_id: t.transaction_id.clone(),
            customer_id: t.customer_id.clone(),
            priority,
            risk_score: 0.7,
            decision: case.live.0,
            rules_fired: vec![hit],
            ruleset_version: live_version.into(),
            model: None,
            top_features: Vec::new(),
        }
    });
    let r = TransactionRecorded {
        transaction: t,
        decision: case.live.0,
        risk_score: 0.5,
        rules_fired: alert.iter().flat_map(|a| a.rules_fired.clone()).collect(),
        ruleset_version: live_version.into(),
        late: false,
        alert_id: alert.as_ref().map(|a| a.alert_id),
        peers_as_of: None,
        shadow: case
            .shadow
            .map(|(version, decision, priority)| ShadowOutcome {
                policy_version: version.into(),
                decision,
                risk_score: 0.42,
                priority,
                rules_fired: vec![RuleName::parse("big_night")],
                model: None,
            }),
        model: None,
    };
    (r, alert)
}

fn times(events: &[RecordedEvent]) -> Vec<DateTime<Utc>> {
    events.iter().map(|e| e.recorded_time).collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("a time: {v}"))
        .parse()
        .expect("time")
}

const VERSION: &str = "version modelVersion publishedBy publishedAt live shadow \
    promotions { by at rollback } \
    expressionRules { name expression weight description enabled } \
    decisionThresholds { review decline } priorityThresholds { p0 p1 p2 p3 } toml";

const SIDE: &str = "version alerts reviews declines truePositives falsePositives \
    falseNegatives trueNegatives recall falsePositiveRate precision";

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn policy_versions_diff_and_shadow_comparison(pool: PgPool) {
    let s = Stack::start(pool).await;
    let legacy = policy("rs-1", 0.5, false, None);
    let p2 = policy("p-2", 0.45, true, Some("gbt-7"));
    let p3 = policy("p-3", 0.4, true, None);
    let policy_stream = domain::streams::POLICY;

    // A ruleset from before policies, then p-2 published by alice and set
    // as the shadow.
    s.append(
        domain::streams::RULESET,
        day(0),
        RulesetPublished {
            version: "rs-1".into(),
            ruleset: legacy.clone(),
        },
    )
    .await;
    s.append(
        policy_stream,
        day(0),
        PolicyPublished {
            version: "p-2".into(),
            policy: p2.clone(),
            published_by: "alice".into(),
        },
    )
    .await;
    s.append(
        policy_stream,
        day(0),
        ShadowPolicySet {
            version: Some("p-2".into()),
            set_by: "alice".into(),
        },
    )
    .await;

    // Traffic decided by rs-1 with p-2 shadowing it, and labels.
    let cases = cases();
    let mut expected = Comparison::default();
    for case in &cases {
        let (r, alert) = recorded(case, "rs-1");
        s.append("customer-sc-c", case.at, r).await;
        if let Some(a) = alert {
            s.append("customer-sc-c", case.at, a).await;
        }
        for is_fraud in case.labels {
            s.append(
                &format!("label-{}", case.id),
                case.at + Duration::days(3),
                TransactionLabeled::new(
                    TransactionId::parse(case.id).expect("id"),
                    *is_fraud,
                    LabelSource::parse("chargeback").expect("source"),
                ),
            )
            .await;
        }
        if let Some((_, decision, priority)) = case.shadow {
            expected.add(
                Verdict {
                    decision: case.live.0,
                    priority: case.live.1,
                },
                Verdict { decision, priority },
                case.labels.last().copied(),
            );
        }
    }

    // What the API shows while p-2 shadows: status, and the comparison
    // against the current shadow.
    wait_all_caught_up(&s.pool, &*s.store).await;
    let d = s
        .gql(&format!(
            "{{ policyStatus {{ liveVersion shadowVersion modelVersion rollbackTo }}
               shadowComparison {{ shadowVersion from to transactions labelled changedDecisions
                 changes {{ change count }} alertsAdded alertsRemoved
                 liveVersions {{ version transactions }}
                 live {{ {SIDE} }} shadow {{ {SIDE} }} }} }}"
        ))
        .await;
    assert_eq!(
        d["policyStatus"],
        json!({"liveVersion": "rs-1", "shadowVersion": "p-2", "modelVersion": null, "rollbackTo": null})
    );
    let c = &d["shadowComparison"];
    // By hand: six compared (sc-7 had no shadow), five labelled, three
    // decisions change, two alerts added (sc-1, sc-6), one removed (sc-2).
    assert_eq!(c["shadowVersion"], "p-2");
    assert_eq!(
        (c["from"].clone(), c["to"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(c["transactions"], 6);
    assert_eq!(c["labelled"], 5);
    assert_eq!(c["changedDecisions"], 3);
    assert_eq!(
        c["changes"],
        json!([{"change": "approve -> review", "count": 2}, {"change": "review -> approve", "count": 1}])
    );
    assert_eq!(
        (c["alertsAdded"].clone(), c["alertsRemoved"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(
        c["liveVersions"],
        json!([{"version": "rs-1", "transactions": 6}])
    );
    assert_eq!(
        c["live"],
        json!({"version": "rs-1", "alerts": 2, "reviews": 1, "declines": 1,
               "truePositives": 1, "falsePositives": 1, "falseNegatives": 1, "trueNegatives": 2,
               "recall": 0.5, "falsePositiveRate": 1.0 / 3.0, "precision": 0.5})
    );
    assert_eq!(
        c["shadow"],
        json!({"version": "p-2", "alerts": 3, "reviews": 2, "declines": 1,
               "truePositives": 2, "falsePositives": 1, "falseNegatives": 0, "trueNegatives": 2,
               "recall": 1.0, "falsePositiveRate": 1.0 / 3.0, "precision": 2.0 / 3.0})
    );
    // And the domain's comparison of the same verdicts says the same.
    assert_eq!(c["transactions"], expected.transactions);
    assert_eq!(c["live"]["recall"], json!(expected.live.recall()));
    assert_eq!(c["shadow"]["precision"], json!(expected.shadow.precision()));
    assert_eq!(
        c["live"]["falsePositiveRate"],
        json!(expected.live.false_positive_rate())
    );
    assert_eq!(c["shadow"]["alerts"], expected.shadow.alerts);

    // A range of event time: the second day only (sc-4..sc-6).
    let d = s
        .gql(&format!(
            r#"{{ shadowComparison(shadowVersion: "p-2", from: "{}", to: "{}") {{
                 transactions changedDecisions alertsAdded shadow {{ truePositives falsePositives }} }} }}"#,
            day(1).to_rfc3339(),
            day(2).to_rfc3339()
        ))
        .await;
    assert_eq!(
        d["shadowComparison"],
        json!({"transactions": 3, "changedDecisions": 1, "alertsAdded": 1,
               "shadow": {"truePositives": 1, "falsePositives": 1}})
    );

    // An alert fired by the expression rule is found by its name, and its
    // hit reads as the rule name with `holds`.
    let d = s
        .gql(
            r#"{ alerts(filter: {rule: "big_night"}, first: 10) { nodes { transactionId ruleNames
                 rulesFired { rule comparison } } } }"#,
        )
        .await;
    let nodes = d["alerts"]["nodes"].as_array().expect("nodes");
    let ids: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n["transactionId"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{nodes:?}");
    assert!(ids.contains(&"sc-2") && ids.contains(&"sc-4"), "{ids:?}");
    assert_eq!(nodes[0]["ruleNames"], json!(["big_night"]));
    assert_eq!(
        nodes[0]["rulesFired"][0],
        json!({"rule": "big_night", "comparison": "holds"})
    );
    // A transaction shows its shadow outcome, or null without one.
    let d = s
        .gql(
            r#"{ a: transaction(id: "sc-1") { shadow { version decision riskScore priority } }
                 b: transaction(id: "sc-7") { shadow { version } } }"#,
        )
        .await;
    assert_eq!(
        d["a"]["shadow"],
        json!({"version": "p-2", "decision": "REVIEW", "riskScore": 0.42, "priority": "P2"})
    );
    assert_eq!(d["b"]["shadow"], Value::Null);

    // Bob promotes p-2; carol publishes p-3 and shadows with it; p-3 is
    // promoted and rolled back to p-2.
    s.append(
        policy_stream,
        day(2),
        PolicyPromoted {
            version: "p-2".into(),
            previous: Some("rs-1".into()),
            promoted_by: "bob".into(),
        },
    )
    .await;
    s.append(
        policy_stream,
        day(2),
        PolicyPublished {
            version: "p-3".into(),
            policy: p3.clone(),
            published_by: "carol".into(),
        },
    )
    .await;
    s.append(
        policy_stream,
        day(2),
        ShadowPolicySet {
            version: Some("p-3".into()),
            set_by: "carol".into(),
        },
    )
    .await;
    let (r, _) = recorded(
        &Case {
            id: "sc-8",
            at: day(2),
            live: (Decision::Approve, None),
            shadow: Some(("p-3", Decision::Approve, None)),
            labels: &[],
        },
        "p-2",
    );
    s.append("customer-sc-c", day(2), r).await;
    wait_all_caught_up(&s.pool, &*s.store).await;

    let d = s
        .gql(&format!(
            "{{ policies {{ {VERSION} }} live: policy {{ version }}
               policyStatus {{ liveVersion shadowVersion modelVersion rollbackTo }}
               shadowComparison {{ shadowVersion transactions changedDecisions
                 live {{ version }} shadow {{ version }} }} }}"
        ))
        .await;
    let ruleset_times = times(&s.stream(domain::streams::RULESET).await);
    let policy_times = times(&s.stream(policy_stream).await);
    let versions = d["policies"].as_array().expect("policies");
    let names: Vec<&str> = versions
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(names, ["rs-1", "p-2", "p-3"]);
    let (rs1, v2, v3) = (&versions[0], &versions[1], &versions[2]);
    // Who and when: as the log recorded them.
    assert_eq!(rs1["publishedBy"], "configuration");
    assert_eq!(time(&rs1["publishedAt"]), ruleset_times[0]);
    assert_eq!(rs1["promotions"][0]["by"], "configuration");
    assert_eq!(
        (rs1["live"].clone(), rs1["shadow"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(v2["publishedBy"], "alice");
    assert_eq!(time(&v2["publishedAt"]), policy_times[0]);
    assert_eq!(v2["modelVersion"], "gbt-7");
    assert_eq!(v2["live"], true);
    assert_eq!(v2["promotions"].as_array().map(Vec::len), Some(1));
    assert_eq!(v2["promotions"][0]["by"], "bob");
    assert_eq!(v2["promotions"][0]["rollback"], false);
    assert_eq!(time(&v2["promotions"][0]["at"]), policy_times[2]);
    assert_eq!(v3["publishedBy"], "carol");
    assert_eq!(
        (v3["live"].clone(), v3["shadow"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(v3["promotions"], json!([]));
    // The policy itself.
    assert_eq!(
        v2["expressionRules"],
        json!([{"name": "big_night", "expression": "f.amount > 900.0 && f.is_night == 1.0",
                "weight": 0.4, "description": "large spend at night", "enabled": true}])
    );
    assert_eq!(rs1["expressionRules"], json!([]));
    assert_eq!(v2["decisionThresholds"]["review"], 0.45);
    assert_eq!(
        v2["decisionThresholds"]["decline"],
        json!(p2.decision.decline)
    );
    assert_eq!(v2["priorityThresholds"]["p0"], json!(p2.priority.p0));
    assert_eq!(v2["priorityThresholds"]["p3"], json!(p2.priority.p3));
    let toml = v2["toml"].as_str().expect("toml");
    assert_eq!(domain::policy::from_toml(toml).expect("reads back"), p2);
    assert_eq!(d["live"]["version"], "p-2");
    assert_eq!(
        d["policyStatus"],
        json!({"liveVersion": "p-2", "shadowVersion": "p-3", "modelVersion": "gbt-7", "rollbackTo": "rs-1"})
    );
    // The current shadow is p-3 now, decided under p-2.
    assert_eq!(
        d["shadowComparison"],
        json!({"shadowVersion": "p-3", "transactions": 1, "changedDecisions": 0,
               "live": {"version": "p-2"}, "shadow": {"version": "p-3"}})
    );

    // The diff is the domain's, in its order: the review threshold, the
    // model and the expression rule p-2 added.
    let d = s
        .gql(r#"{ policyDiff(from: "rs-1", to: "p-2") { path from to } }"#)
        .await;
    let expected: Vec<Value> = domain::policy::diff::diff(&legacy, &p2)
        .into_iter()
        .map(|c| json!({"path": c.path, "from": c.from, "to": c.to}))
        .collect();
    assert_eq!(d["policyDiff"], Value::Array(expected));
    let changes = d["policyDiff"].as_array().expect("changes");
    assert!(changes.contains(&json!({"path": "decision.review", "from": "0.5", "to": "0.45"})));
    assert!(changes.contains(&json!({"path": "model", "from": null, "to": "\"gbt-7\""})));
    assert!(
        changes
            .iter()
            .any(|c| c["path"] == "expression_rules.big_night" && c["from"].is_null()),
        "{changes:?}"
    );

    // p-3 promoted (by alice), then rolled back to p-2 by dave.
    s.append(
        policy_stream,
        day(3),
        PolicyPromoted {
            version: "p-3".into(),
            previous: Some("p-2".into()),
            promoted_by: "alice".into(),
        },
    )
    .await;
    s.append(
        policy_stream,
        day(3),
        PolicyRolledBack {
            from: "p-3".into(),
            to: "p-2".into(),
            rolled_back_by: "dave".into(),
        },
    )
    .await;
    let d = s
        .gql(
            r#"{ policy(version: "p-2") { live promotions { by rollback } }
                 p3: policy(version: "p-3") { live shadow promotions { by rollback } }
                 policyStatus { liveVersion shadowVersion rollbackTo } }"#,
        )
        .await;
    assert_eq!(
        d["policy"],
        json!({"live": true, "promotions": [{"by": "bob", "rollback": false}, {"by": "dave", "rollback": true}]})
    );
    assert_eq!(
        d["p3"],
        json!({"live": false, "shadow": false, "promotions": [{"by": "alice", "rollback": false}]})
    );
    assert_eq!(
        d["policyStatus"],
        json!({"liveVersion": "p-2", "shadowVersion": null, "rollbackTo": "rs-1"})
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn unknown_versions_are_not_found_and_a_bad_range_is_refused(pool: PgPool) {
    let s = Stack::start(pool).await;
    // An empty log: nothing live, nothing to compare.
    let d = s
        .gql("{ policies { version } policy { version } policyStatus { liveVersion rollbackTo } shadowComparison { transactions } }")
        .await;
    assert_eq!(
        d,
        json!({"policies": [], "policy": null,
               "policyStatus": {"liveVersion": null, "rollbackTo": null},
               "shadowComparison": null})
    );
    s.append(
        domain::streams::POLICY,
        day(0),
        PolicyPublished {
            version: "p-1".into(),
            policy: policy("p-1", 0.5, false, None),
            published_by: "alice".into(),
        },
    )
    .await;
    // Names that name nothing: null with NOT_FOUND, the rest stands.
    for q in [
        r#"{ policy(version: "nope") { version } policies { version } }"#,
        r#"{ policyDiff(from: "p-1", to: "nope") { path } policies { version } }"#,
        r#"{ policyDiff(from: "nope", to: "p-1") { path } policies { version } }"#,
        r#"{ shadowComparison(shadowVersion: "nope") { transactions } policies { version } }"#,
    ] {
        let a = s.query.gql(q, json!({})).await;
        assert_eq!(a.codes(), ["NOT_FOUND"], "{q}: {}", a.body);
        assert_eq!(
            a.body["data"]["policies"],
            json!([{"version": "p-1"}]),
            "{q}"
        );
    }
    // A version published but never shadowing: an empty comparison.
    let d = s
        .gql(r#"{ shadowComparison(shadowVersion: "p-1") { transactions labelled changes { change } live { version recall } } }"#)
        .await;
    assert_eq!(
        d["shadowComparison"],
        json!({"transactions": 0, "labelled": 0, "changes": [], "live": {"version": null, "recall": null}})
    );
    // A range that ends before it starts.
    let a = s
        .query
        .gql(
            r#"{ shadowComparison(shadowVersion: "p-1", from: "2026-07-02T00:00:00Z", to: "2026-07-01T00:00:00Z") { transactions } }"#,
            json!({}),
        )
        .await;
    assert_eq!(a.codes(), ["BAD_USER_INPUT"], "{}", a.body);
}

fn backtest(candidate: &str, by: &str, labelled: bool) -> BacktestRecorded {
    let figures = |flagged, tp, fp, recall| BacktestFigures {
        flagged,
        true_positives: tp,
        false_positives: fp,
        recall,
        false_positive_rate: Some(0.05),
        precision: Some(0.5),
        alert_rate: Some(0.1),
    };
    BacktestRecorded {
        candidate_version: candidate.into(),
        baseline_version: None,
        from: Some(day(0)),
        to: None,
        flag: "alert".into(),
        events_read: 420,
        as_of_position: 410,
        compared: 300,
        mismatches: 0,
        differing: 7,
        decisions: [
            ("approve -> approve".to_owned(), 290),
            ("approve -> review".to_owned(), 7),
            ("review -> review".to_owned(), 3),
        ]
        .into_iter()
        .collect(),
        alerts_old: 10,
        alerts_new: 17,
        labelled: if labelled { 40 } else { 0 },
        old_figures: labelled.then(|| figures(10, 5, 5, Some(0.5))),
        new_figures: labelled.then(|| figures(17, 9, 8, None)),
        recorded_by: by.into(),
    }
}

/// `fraudctl backtest --record` appends `BacktestRecorded` to the
/// `backtest` stream; `backtests` reads them back newest first, with the
/// figures as recorded, filtered by candidate, paged, and refuses a page
/// past the limit.
#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn recorded_backtests_are_listed_newest_first(pool: PgPool) {
    let s = Stack::start(pool).await;
    assert_eq!(
        s.gql("{ backtests { candidateVersion } }").await,
        json!({"backtests": []})
    );
    s.append(
        domain::streams::BACKTEST,
        day(1),
        backtest("draft-1", "ana", true),
    )
    .await;
    s.append(
        domain::streams::BACKTEST,
        day(2),
        backtest("draft-2", "bo", false),
    )
    .await;
    let recorded = s.stream(domain::streams::BACKTEST).await;
    let d = s
        .gql(
            "{ backtests { position recordedAt recordedBy candidateVersion baselineVersion from to flag \
               eventsRead asOfPosition compared mismatches differing decisions { change count } \
               alertsOld alertsNew labelled \
               baseline { flagged truePositives falsePositives recall falsePositiveRate precision alertRate } \
               candidate { recall } } }",
        )
        .await;
    let list = d["backtests"].as_array().expect("list");
    assert_eq!(list.len(), 2, "{d}");
    assert_eq!(list[0]["candidateVersion"], "draft-2", "newest first");
    assert_eq!(list[0]["baseline"], Value::Null, "no labels, no figures");
    assert_eq!(
        list[1],
        json!({
            "position": recorded[0].position.0,
            "recordedAt": list[1]["recordedAt"],
            "recordedBy": "ana",
            "candidateVersion": "draft-1",
            "baselineVersion": null,
            "from": list[1]["from"],
            "to": null,
            "flag": "alert",
            "eventsRead": 420,
            "asOfPosition": 410,
            "compared": 300,
            "mismatches": 0,
            "differing": 7,
            "decisions": [
                {"change": "approve -> approve", "count": 290},
                {"change": "approve -> review", "count": 7},
                {"change": "review -> review", "count": 3},
            ],
            "alertsOld": 10,
            "alertsNew": 17,
            "labelled": 40,
            "baseline": {"flagged": 10, "truePositives": 5, "falsePositives": 5, "recall": 0.5,
                         "falsePositiveRate": 0.05, "precision": 0.5, "alertRate": 0.1},
            "candidate": {"recall": null},
        }),
        "{d}"
    );
    assert_eq!(time(&list[1]["recordedAt"]), recorded[0].recorded_time);
    assert_eq!(time(&list[1]["from"]), day(0));
    // By candidate, and paged.
    let d = s
        .gql(r#"{ one: backtests(candidateVersion: "draft-1") { recordedBy } first: backtests(first: 1) { candidateVersion } none: backtests(candidateVersion: "nope") { flag } }"#)
        .await;
    assert_eq!(
        d,
        json!({"one": [{"recordedBy": "ana"}], "first": [{"candidateVersion": "draft-2"}], "none": []})
    );
    let a = s
        .query
        .gql("{ backtests(first: 100000) { flag } }", json!({}))
        .await;
    assert_eq!(a.codes(), ["BAD_USER_INPUT"], "{}", a.body);
}
