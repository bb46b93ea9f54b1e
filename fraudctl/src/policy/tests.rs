//! `fraudctl policy` over a real PostgreSQL log: `compare` folds shadowed
//! decisions, alerts and labels written to the log (only the shadow
//! version chosen, newest label wins, time ranges, nothing written), the
//! backtest finds the deciding policy of a `PolicyPublished` version, and
//! `publish`'s local check names the rule it refuses.

use super::compare::{CompareFold, Selection, compare_on};
use super::*;
use crate::backtest::{BacktestArgs, backtest_on};
use crate::eval::figures::Flag;
use crate::http::testing;
use crate::simulate::{Config, generate};
use domain::events::{
    AlertRaised, PolicyPromoted, PolicyPublished, ShadowOutcome, ShadowPolicySet,
    TransactionLabeled, TransactionRecorded,
};
use domain::ids::AlertId;
use domain::ingest::{ParseContext, parse_transaction};
use domain::{Decision, DomainEvent, Priority, Ruleset, Transaction};
use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion, NewEvent, Payload};
use uuid::Uuid;

/// `n` simulated transactions, as the ingest parses them.
fn transactions(n: usize, prefix: &str) -> Vec<Transaction> {
    let sim = generate(&Config {
        seed: 3,
        customers: 40,
        days: 3.0,
        fraud_rate: 0.05,
        start: "2026-02-01T00:00:00Z".parse().unwrap(),
        speed: 1.0,
        id_prefix: prefix.into(),
    });
    let ctx = ParseContext {
        now: chrono::Utc::now(),
        max_future_skew: chrono::Duration::days(36_500),
        default_currency: domain::money::Currency::parse("USD").unwrap(),
    };
    (0..n.min(sim.txs.len()))
        .map(|i| {
            let value: serde_json::Value = serde_json::from_slice(&sim.json(i).unwrap()).unwrap();
            parse_transaction(&value, &ctx).unwrap()
        })
        .collect()
}

async fn append(store: &PgEventStore, stream: &str, events: Vec<DomainEvent>) {
    let at = chrono::Utc::now();
    let new = events
        .iter()
        .map(|e| {
            NewEvent::with_payload(
                e.event_type(),
                e.schema_version(),
                at,
                Payload::from_json(e.to_json().unwrap()).unwrap(),
            )
        })
        .collect();
    store
        .append(stream, ExpectedVersion::Any, new)
        .await
        .unwrap();
}

fn policy(version: &str) -> Ruleset {
    Ruleset {
        version: version.into(),
        ..Ruleset::default()
    }
}

async fn publish(store: &PgEventStore, version: &str, by: &str, promote: bool) {
    let mut events = vec![DomainEvent::from(PolicyPublished {
        version: version.into(),
        policy: policy(version),
        published_by: by.into(),
    })];
    if promote {
        events.push(
            PolicyPromoted {
                version: version.into(),
                previous: None,
                promoted_by: by.into(),
            }
            .into(),
        );
    }
    append(store, domain::streams::POLICY, events).await;
}

/// One side as the test writes it: decision and alert priority.
type Side = (Decision, Option<Priority>);

/// Records `tx` as decided by `p-live` with `live`, and by `shadow` (a
/// version and its verdict) when given; the alert follows when live raised
/// one.
async fn record(store: &PgEventStore, tx: &Transaction, live: Side, shadow: Option<(&str, Side)>) {
    let alert = live.1.map(|_| AlertId(Uuid::now_v7()));
    let recorded = TransactionRecorded {
        transaction: tx.clone(),
        decision: live.0,
        risk_score: 0.5,
        rules_fired: Vec::new(),
        ruleset_version: "p-live".into(),
        late: false,
        alert_id: alert,
        peers_as_of: None,
        shadow: shadow.map(|(version, (decision, priority))| ShadowOutcome {
            policy_version: version.into(),
            decision,
            risk_score: 0.5,
            priority,
            rules_fired: Vec::new(),
            model: None,
        }),
        model: None,
    };
    let mut events = vec![DomainEvent::from(recorded)];
    if let (Some(alert_id), Some(priority)) = (alert, live.1) {
        events.push(
            AlertRaised {
                alert_id,
                transaction_id: tx.transaction_id.clone(),
                customer_id: tx.customer_id.clone(),
                priority,
                risk_score: 0.5,
                decision: live.0,
                rules_fired: Vec::new(),
                ruleset_version: "p-live".into(),
                model: None,
                top_features: Vec::new(),
            }
            .into(),
        );
    }
    append(store, &domain::streams::customer(&tx.customer_id), events).await;
}

async fn label(store: &PgEventStore, tx: &Transaction, is_fraud: bool) {
    let l: TransactionLabeled = serde_json::from_value(serde_json::json!({
        "transaction_id": tx.transaction_id.as_str(), "is_fraud": is_fraud, "source": "test"
    }))
    .unwrap();
    append(
        store,
        &domain::streams::label(tx.transaction_id.as_str()),
        vec![l.into()],
    )
    .await;
}

/// The test database's URL (sqlx::test made it under DATABASE_URL's server).
async fn url_of(pool: &sqlx::PgPool) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let i = base.rfind('/').unwrap();
    format!("{}/{db}", &base[..i])
}

const QUIET: Side = (Decision::Approve, None);

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn compare_folds_shadowed_decisions_alerts_and_labels(pool: sqlx::PgPool) {
    let store = PgEventStore::new(pool.clone());
    let txs = transactions(8, "cmp");
    publish(&store, "p-live", "configuration", true).await;
    publish(&store, "p-old", "alice", false).await;
    publish(&store, "p-shadow", "alice", false).await;
    append(
        &store,
        domain::streams::POLICY,
        vec![
            ShadowPolicySet {
                version: Some("p-shadow".into()),
                set_by: "alice".into(),
            }
            .into(),
        ],
    )
    .await;
    let review = |p| (Decision::Review, Some(p));
    let decline = (Decision::Decline, Some(Priority::P0));
    // Shadowed by another version and not shadowed: both left out.
    record(
        &store,
        &txs[4],
        QUIET,
        Some(("p-old", review(Priority::P3))),
    )
    .await;
    record(&store, &txs[5], QUIET, None).await;
    // A fraud only the shadow catches; a false alarm only live raises; a
    // false alarm of both (labelled fraud first, then not: the newest
    // counts); an unlabelled agreement; a fraud both decline.
    record(
        &store,
        &txs[0],
        QUIET,
        Some(("p-shadow", review(Priority::P2))),
    )
    .await;
    record(
        &store,
        &txs[1],
        review(Priority::P2),
        Some(("p-shadow", QUIET)),
    )
    .await;
    let p3 = review(Priority::P3);
    record(&store, &txs[2], p3, Some(("p-shadow", p3))).await;
    record(&store, &txs[3], QUIET, Some(("p-shadow", QUIET))).await;
    record(&store, &txs[6], decline, Some(("p-shadow", decline))).await;
    label(&store, &txs[0], true).await;
    label(&store, &txs[1], false).await;
    label(&store, &txs[2], true).await;
    label(&store, &txs[2], false).await;
    label(&store, &txs[6], true).await;
    label(&store, &txs[5], true).await;
    let events = testing::event_count(&pool).await;

    let url = url_of(&pool).await;
    let args = CompareArgs {
        shadow: None,
        from: None,
        to: None,
        database_url: url,
        json: false,
    };
    // Through the read-only session, as the command runs.
    let report = compare(&args).await.unwrap();
    assert_eq!(report.shadow_version.as_deref(), Some("p-shadow"));
    assert_eq!(report.live_versions.get("p-live"), Some(&5));
    let c = &report.comparison;
    assert_eq!((c.transactions, c.labelled), (5, 4));
    assert_eq!(c.changed_decisions, 2);
    assert_eq!(c.changes.get("approve -> review"), Some(&1));
    assert_eq!(c.changes.get("review -> approve"), Some(&1));
    assert_eq!((c.alerts_added, c.alerts_removed), (1, 1));
    let (l, s) = (&c.live, &c.shadow);
    assert_eq!((l.alerts, s.alerts), (3, 3));
    assert_eq!(
        (
            l.true_positives,
            l.false_negatives,
            l.false_positives,
            l.true_negatives
        ),
        (1, 1, 2, 0)
    );
    assert_eq!(
        (
            s.true_positives,
            s.false_negatives,
            s.false_positives,
            s.true_negatives
        ),
        (2, 0, 1, 1)
    );
    assert_eq!(report.live_rates.recall, Some(0.5));
    assert_eq!(report.shadow_rates.recall, Some(1.0));
    assert_eq!(report.live_rates.false_positive_rate, Some(1.0));
    assert_eq!(report.shadow_rates.false_positive_rate, Some(0.5));
    let text = render::comparison(&report);
    assert!(
        text.starts_with("live p-live against shadow p-shadow: 5 transactions compared"),
        "{text}"
    );
    assert!(
        text.contains("recall      50.00% (1/2)    100.00% (2/2)\n"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["transactions"], 5);
    assert_eq!(json["shadow"]["true_positives"], 2);
    assert_eq!(json["shadow_rates"]["recall"], 1.0);

    // Another version by name.
    let old = compare_on(
        &pool,
        Selection {
            shadow: Some("p-old".into()),
            ..Selection::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(old.comparison.transactions, 1);
    assert_eq!(old.comparison.changes.get("approve -> review"), Some(&1));

    // A time range: only what happened before tx 3 (the simulation is in
    // event-time order).
    let ranged = compare_on(
        &pool,
        Selection {
            to: Some(txs[3].timestamp),
            ..Selection::default()
        },
    )
    .await
    .unwrap();
    let before = txs[..3]
        .iter()
        .filter(|t| t.timestamp < txs[3].timestamp)
        .count() as u64;
    assert_eq!(ranged.comparison.transactions, before);
    assert!(ranged.outside > 0);

    assert_eq!(testing::event_count(&pool).await, events, "nothing written");
}

#[test]
fn without_a_shadow_set_now_the_latest_one_seen_is_compared() {
    let txs = transactions(3, "fold");
    let at = chrono::Utc::now();
    let recorded = |tx: &Transaction, version: &str| {
        DomainEvent::from(TransactionRecorded {
            transaction: tx.clone(),
            decision: Decision::Approve,
            risk_score: 0.0,
            rules_fired: Vec::new(),
            ruleset_version: "p-live".into(),
            late: false,
            alert_id: None,
            peers_as_of: None,
            shadow: Some(ShadowOutcome {
                policy_version: version.into(),
                decision: Decision::Review,
                risk_score: 0.5,
                priority: Some(Priority::P3),
                rules_fired: Vec::new(),
                model: None,
            }),
            model: None,
        })
    };
    let mut fold = CompareFold::new(Selection::default());
    fold.apply(&recorded(&txs[0], "a"), at);
    fold.apply(&recorded(&txs[1], "b"), at);
    fold.apply(&recorded(&txs[2], "b"), at);
    assert_eq!(fold.chosen_version().as_deref(), Some("b"));
    let report = fold.finish(3, 0);
    assert_eq!(report.comparison.transactions, 2);
    assert_eq!(report.comparison.alerts_added, 2);
    // A shadow set now wins over what decisions recorded.
    let mut fold = CompareFold::new(Selection::default());
    fold.apply(
        &PolicyPublished {
            version: "a".into(),
            policy: policy("a"),
            published_by: "alice".into(),
        }
        .into(),
        at,
    );
    fold.apply(
        &ShadowPolicySet {
            version: Some("a".into()),
            set_by: "alice".into(),
        }
        .into(),
        at,
    );
    fold.apply(&recorded(&txs[0], "a"), at);
    fold.apply(&recorded(&txs[1], "b"), at);
    assert_eq!(fold.chosen_version().as_deref(), Some("a"));
    assert_eq!(fold.finish(0, 0).comparison.transactions, 1);
    // Nothing shadowed: nothing to compare.
    let none = CompareFold::new(Selection::default()).finish(0, 0);
    assert_eq!(none.shadow_version, None);
}

/// The default policy with a lower review and alert cut-off, as a file.
fn strict_toml(version: &str) -> String {
    let text = domain::policy::to_toml(&Ruleset::default()).unwrap();
    let text = text
        .replacen(
            &format!("version = {:?}", Ruleset::default().version),
            &format!("version = {version:?}"),
            1,
        )
        .replacen("review = 0.4", "review = 0.1", 1)
        .replacen("p3 = 0.3", "p3 = 0.1", 1);
    assert!(text.contains("review = 0.1") && text.contains("p3 = 0.1"));
    text
}

fn temp(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("fraudctl-policy-{name}-{}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_backtest_finds_policy_published_versions_and_lists_differences(pool: sqlx::PgPool) {
    let store = PgEventStore::new(pool.clone());
    let strict = check_text(&strict_toml("p-strict")).unwrap();
    append(
        &store,
        domain::streams::POLICY,
        vec![
            PolicyPublished {
                version: "p-strict".into(),
                policy: strict.clone(),
                published_by: "alice".into(),
            }
            .into(),
            PolicyPromoted {
                version: "p-strict".into(),
                previous: None,
                promoted_by: "bob".into(),
            }
            .into(),
        ],
    )
    .await;
    // Decided in memory by the promoted version, recorded as the command
    // side would.
    let txs = transactions(400, "btp");
    let mut replayer = crate::offline::Replayer::new(strict);
    for tx in &txs {
        let recorded = replayer.decide(tx.clone());
        let stream = domain::streams::customer(&tx.customer_id);
        append(&store, &stream, vec![recorded.into()]).await;
    }
    let events = testing::event_count(&pool).await;
    let args = |draft: PathBuf| BacktestArgs {
        policy: draft,
        baseline: None,
        show: 3,
        differences_out: None,
        from: None,
        to: None,
        database_url: String::new(),
        flag: Flag::Alert,
        json: false,
        record: false,
        by: "fraudctl backtest".into(),
    };

    let same = temp("same.toml", &strict_toml("p-strict"));
    let report = backtest_on(&pool, &args(same.clone())).await.unwrap();
    let o = &report.outcome;
    assert_eq!(o.compared, txs.len() as u64);
    assert_eq!(
        o.unknown_ruleset, 0,
        "p-strict was found in the policy stream"
    );
    assert_eq!(o.mismatches, 0, "{:?}", o.mismatch_examples);
    assert_eq!(o.differing, 0);
    assert!(report.differences.is_empty());

    let default = temp("default.toml", domain::ruleset::DEFAULT_TOML);
    let csv = std::env::temp_dir().join(format!("fraudctl-policy-diff-{}.csv", std::process::id()));
    let mut with_csv = args(default.clone());
    with_csv.differences_out = Some(csv.clone());
    let report = backtest_on(&pool, &with_csv).await.unwrap();
    let o = &report.outcome;
    assert_eq!(o.mismatches, 0, "the baseline is still what decided");
    assert!(o.differing > 3, "a laxer draft decides differently: {o:?}");
    assert_eq!(report.differences.len(), 3, "--show caps the list");
    let d = &report.differences[0];
    let rows = std::fs::read_to_string(&csv).unwrap();
    let mut lines = rows.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("transaction_id,event_time,old_decision")
    );
    assert_eq!(lines.count() as u64, o.differing, "the CSV has them all");
    let text = crate::backtest::render(&report);
    assert!(
        text.contains(&format!(
            "{} transactions decided differently (old -> new), the first 3; all in",
            o.differing
        )),
        "{text}"
    );
    assert!(text.contains(d.transaction_id.as_str()), "{text}");

    assert_eq!(testing::event_count(&pool).await, events, "nothing written");
    for p in [same, default, csv] {
        std::fs::remove_file(p).ok();
    }
}

/// A valid policy file with `rules` appended as `[[expression_rules]]`.
fn with_rules(rules: &[(&str, &str)]) -> String {
    let mut text = domain::policy::to_toml(&Ruleset::default()).unwrap();
    for (name, expression) in rules {
        text.push_str(&format!(
            "\n[[expression_rules]]\nname = {name:?}\nexpression = {expression:?}\nweight = 0.2\n"
        ));
    }
    text
}

#[test]
fn publish_checks_the_file_and_names_the_rule_it_refuses() {
    let good = temp(
        "good.toml",
        &with_rules(&[("big_night", "f.amount > 900.0")]),
    );
    let (text, policy) = check_file(&good).unwrap();
    assert_eq!(policy.expression_rules.len(), 1);
    assert!(text.contains("big_night"));

    let empty = temp("empty.toml", &with_rules(&[("blank_rule", "  ")]));
    let error = format!("{:#}", check_file(&empty).unwrap_err());
    assert!(
        error.contains("blank_rule") && error.contains("empty"),
        "{error}"
    );
    assert!(
        error.starts_with(&format!("{} is not a valid policy: ", empty.display())),
        "{error}"
    );

    let twice = temp(
        "twice.toml",
        &with_rules(&[("twice", "f.amount > 1.0"), ("twice", "f.amount > 2.0")]),
    );
    let error = format!("{:#}", check_file(&twice).unwrap_err());
    assert!(
        error.contains("twice") && error.contains("used twice"),
        "{error}"
    );

    let missing = std::env::temp_dir().join("fraudctl-policy-no-such-file.toml");
    assert!(check_file(&missing).is_err());
    for p in [good, empty, twice] {
        std::fs::remove_file(p).ok();
    }
}
