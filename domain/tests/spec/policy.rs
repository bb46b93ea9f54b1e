//! The policy, given/when/then: expression rules decide beside the built-in
//! ones and explain themselves; a shadow policy is recorded and acted on
//! nowhere; the policy stream's lifecycle (publish, promote with four eyes,
//! roll back, shadow) folds and refuses as an admin would expect.

use crate::support::*;
use chrono::{TimeZone, Utc};
use domain::policy::book::{CONFIGURATION, PolicyBook, PolicyRefusal};
use domain::policy::expression::ExpressionRule;
use domain::policy::rules::compile;
use domain::{DomainEvent, RecordTransaction, Ruleset, decide_with_shadow};

fn rule(name: &str, expression: &str, weight: f64) -> ExpressionRule {
    ExpressionRule {
        name: name.into(),
        expression: expression.into(),
        weight,
        description: None,
        enabled: true,
    }
}

fn policy(version: &str, rules: Vec<ExpressionRule>) -> Ruleset {
    Ruleset {
        version: version.into(),
        expression_rules: compile(rules).unwrap(),
        ..Default::default()
    }
}

fn when_at(at: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + at, 0).unwrap()
}

#[test]
fn an_expression_rule_fires_scores_and_explains() {
    let then = given([])
        .with_ruleset(|r| {
            r.expression_rules = compile(vec![rule("big", "tx.amount > 900.0", 0.6)]).unwrap()
        })
        .when(tx().amount(950.0));
    let hit = then
        .decided
        .recorded
        .rules_fired
        .iter()
        .find(|h| h.rule.as_str() == "big")
        .expect("big fired");
    assert_eq!(hit.weight, 0.6);
    assert!(hit.detail.contains("tx.amount = 950"), "{}", hit.detail);
    assert!(then.decided.recorded.risk_score >= 0.6);
    assert!(then.decided.alert.is_some(), "0.6 is over p3");
}

#[test]
fn an_expression_rule_that_does_not_hold_or_is_disabled_does_not_fire() {
    let mut off = rule("off", "tx.amount > 1.0", 0.9);
    off.enabled = false;
    let then = given([])
        .with_ruleset(|r| {
            r.expression_rules = compile(vec![rule("big", "tx.amount > 900.0", 0.6), off]).unwrap()
        })
        .when(tx().amount(50.0));
    assert!(then.decided.recorded.rules_fired.is_empty());
}

#[test]
fn a_rule_that_errs_counts_as_not_fired_and_is_reported() {
    // Without a merchant, reading it unguarded errs.
    let then = given([])
        .with_ruleset(|r| {
            r.expression_rules =
                compile(vec![rule("merchant", "tx.merchant_id == 'm-9'", 0.9)]).unwrap()
        })
        .when(tx().without_merchant());
    assert!(then.decided.recorded.rules_fired.is_empty());
    assert_eq!(then.decided.failures.len(), 1);
    assert_eq!(&*then.decided.failures[0].rule, "merchant");
}

#[test]
fn the_shadow_is_recorded_and_acted_on_nowhere() {
    let live = Ruleset::default();
    let shadow = policy(
        "shadow-1",
        vec![rule("everything", "tx.amount > 0.0", 0.95)],
    );
    let cmd = RecordTransaction {
        transaction: tx().amount(20.0).build(),
        ids: ids(),
        peers: Default::default(),
    };
    let state = domain::CustomerState::for_ruleset(&live);
    let decided = decide_with_shadow(&state, &cmd, &live, Some(&shadow));
    let alone = domain::decide(&state, &cmd, &live);
    assert!(decided.alert.is_none(), "no alert from the shadow");
    assert_eq!(decided.recorded.decision, alone.recorded.decision);
    assert_eq!(decided.recorded.risk_score, alone.recorded.risk_score);
    let outcome = decided.recorded.shadow.as_ref().expect("recorded");
    assert_eq!(outcome.policy_version, "shadow-1");
    assert_eq!(outcome.priority, Some(domain::Priority::P0));
    assert_eq!(outcome.rules_fired.len(), 1);
    assert_eq!(outcome.rules_fired[0].as_str(), "everything");
}

/// The book after `events`, each a second apart.
fn book(events: Vec<DomainEvent>) -> PolicyBook {
    let mut book = PolicyBook::default();
    for (i, e) in events.iter().enumerate() {
        book.apply(e, when_at(i as i64));
    }
    book
}

fn published(book: &PolicyBook, version: &str, by: &str, shadow: bool) -> Vec<DomainEvent> {
    book.publish(policy(version, vec![]), by, shadow).unwrap()
}

#[test]
fn publish_then_promote_by_another_admin_under_four_eyes() {
    let mut events = published(&PolicyBook::default(), "v1", CONFIGURATION, false);
    events.push(
        book(events.clone())
            .promote("v1", CONFIGURATION, true)
            .unwrap(),
    );
    events.extend(published(&book(events.clone()), "v2", "alice", true));
    let b = book(events.clone());
    assert_eq!(b.live().map(|l| l.version()), Some("v1"));
    assert_eq!(b.shadow().map(|s| s.version()), Some("v2"));
    assert_eq!(
        b.promote("v2", "alice", true),
        Err(PolicyRefusal::FourEyes {
            version: "v2".into(),
            by: "alice".into()
        })
    );
    assert!(b.promote("v2", "alice", false).is_ok(), "without four eyes");
    events.push(b.promote("v2", "bob", true).unwrap());
    let b = book(events);
    assert_eq!(b.live().map(|l| l.version()), Some("v2"));
    assert!(b.shadow().is_none(), "the promoted shadow stops shadowing");
    let v2 = b.version("v2").unwrap();
    assert_eq!(v2.published_by, "alice");
    assert_eq!(v2.promotions[0].by, "bob");
    assert_eq!(b.rollback_target().map(|r| r.version()), Some("v1"));
}

#[test]
fn a_version_is_published_once_and_only_known_ones_are_promoted() {
    let events = published(&PolicyBook::default(), "v1", "alice", false);
    let b = book(events);
    assert_eq!(
        b.publish(policy("v1", vec![]), "bob", false),
        Err(PolicyRefusal::VersionExists("v1".into()))
    );
    assert_eq!(
        b.promote("v9", "bob", false),
        Err(PolicyRefusal::UnknownVersion("v9".into()))
    );
    assert_eq!(b.rollback("bob"), Err(PolicyRefusal::NothingToRollBackTo));
}

#[test]
fn rollback_walks_back_through_what_was_live() {
    let mut events = Vec::new();
    for v in ["v1", "v2", "v3"] {
        events.extend(published(&book(events.clone()), v, "alice", false));
        events.push(book(events.clone()).promote(v, "bob", true).unwrap());
    }
    events.push(book(events.clone()).rollback("carol").unwrap());
    let b = book(events.clone());
    assert_eq!(b.live().map(|l| l.version()), Some("v2"));
    let again = b.version("v2").unwrap().promotions.last().unwrap();
    assert!(again.rollback && again.by == "carol");
    events.push(b.rollback("carol").unwrap());
    let b = book(events.clone());
    assert_eq!(b.live().map(|l| l.version()), Some("v1"));
    assert_eq!(b.rollback("carol"), Err(PolicyRefusal::NothingToRollBackTo));
    // Promoting again after rollbacks starts a new history.
    events.push(b.promote("v3", "bob", true).unwrap());
    assert_eq!(
        book(events).rollback_target().map(|r| r.version()),
        Some("v1")
    );
}

#[test]
fn a_legacy_ruleset_reads_as_published_and_promoted() {
    let legacy = DomainEvent::RulesetPublished(domain::events::RulesetPublished {
        version: "2025.1-reference".into(),
        ruleset: policy("2025.1-reference", vec![]),
    });
    let b = book(vec![legacy]);
    let live = b.live().unwrap();
    assert_eq!(live.version(), "2025.1-reference");
    assert_eq!(live.published_by, CONFIGURATION);
    assert_eq!(
        b.policy_events_folded(),
        0,
        "not an event of the policy stream"
    );
}

#[test]
fn the_shadow_is_set_cleared_and_never_the_live_one() {
    let mut events = published(&PolicyBook::default(), "v1", "alice", false);
    events.push(book(events.clone()).promote("v1", "bob", true).unwrap());
    events.extend(published(&book(events.clone()), "v2", "alice", false));
    let b = book(events.clone());
    assert_eq!(
        b.set_shadow(Some("v1"), "alice"),
        Err(PolicyRefusal::ShadowIsLive("v1".into()))
    );
    events.push(b.set_shadow(Some("v2"), "alice").unwrap());
    assert_eq!(
        book(events.clone()).shadow().map(|s| s.version()),
        Some("v2")
    );
    events.push(book(events.clone()).set_shadow(None, "alice").unwrap());
    assert!(book(events).shadow().is_none());
}

#[test]
fn refused_rules_are_named_with_the_reason() {
    let cases = [
        (
            vec![rule("velocity_count", "tx.amount > 1.0", 0.1)],
            "built-in",
        ),
        (vec![rule("Bad Name", "tx.amount > 1.0", 0.1)], "a-z"),
        (vec![rule("heavy", "tx.amount > 1.0", 1.5)], "weight"),
        (vec![rule("typo", "f.amout > 1.0", 0.1)], "f.amount"),
        (
            vec![rule("number", "tx.amount + 1.0", 0.1)],
            "true or false",
        ),
    ];
    for (rules, says) in cases {
        let error = compile(rules).unwrap_err();
        assert!(error.to_string().contains(says), "{error}");
    }
}

#[test]
fn the_worked_example_in_docs_policy_md_publishes_and_fires() {
    let doc = include_str!("../../../docs/policy.md");
    let start = doc.find("[[expression_rules]]").expect("the example rule");
    let end = start + doc[start..].find("```").expect("its block ends");
    let mut text = domain::policy::to_toml(&Ruleset::default()).unwrap();
    text = text.replacen("2026.2-default", "2026.12-night-cash", 1);
    text.push('\n');
    text.push_str(&doc[start..end]);
    let policy = domain::policy::from_toml(&text).expect("the example is a valid policy");
    let rule = &policy.expression_rules[0];
    assert_eq!(rule.rule.name, "night_cash_abroad");
    let mut features = domain::features::Features::default();
    use domain::features::F;
    features.set(F::IsNight, 1.0);
    features.set(F::FirstCountry, 1.0);
    features.set(F::AmountToMean, 4.2);
    let withdrawal = tx().withdrawal().build();
    assert_eq!(rule.program.evaluate(&withdrawal, &features), Ok(true));
    features.set(F::AmountToMean, f64::NAN);
    assert_eq!(rule.program.evaluate(&withdrawal, &features), Ok(false));
}
