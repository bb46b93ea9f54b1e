//! `fraudctl policy` end to end: the binary against a real command side
//! (port 0, a fresh database, named admin tokens, four eyes on). Show what
//! is live, publish a draft as the shadow (and be refused: the same version
//! again, a bad rule even with no server), list, diff, promote (four eyes),
//! roll back, set and clear the shadow; then `compare` reads the shadowed
//! decisions and labels from the log; `backtest --ruleset` still works as
//! the old name of `--policy`.

use access::Tokens;
use command_service::configuration::Settings;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::Output;
use test_support::{database_url, spawn_command_with, tx};

const ALICE: &str = "alice-token";
const BOB: &str = "bob-token";
const DEFAULT: &str = "2026.2-default";

/// Runs the binary off the runtime's threads (the command side under test
/// runs on them).
async fn fraudctl(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fraudctl"))
            .args(&args)
            .env_remove("SENTINEL_URL")
            .env_remove("SENTINEL_TOKEN")
            .env("RUST_LOG", "warn")
            .output()
            .expect("runs")
    })
    .await
    .expect("joins")
}

/// `fraudctl policy ARGS --url URL --token TOKEN`: stdout, or the failure.
async fn policy(url: &str, token: &str, args: &[&str]) -> Result<String, String> {
    let mut all: Vec<String> = vec!["policy".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["--url".into(), url.into(), "--token".into(), token.into()]);
    let out = fraudctl(all).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    }
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "fraudctl-policy-it-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("writes");
    path
}

const BIG_SPEND: &str = "\n[[expression_rules]]\nname = \"big_spend\"\nexpression = \"tx.amount > 5000.0\"\nweight = 0.9\n";

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_policy_lifecycle_through_the_binary(pool: PgPool) {
    let settings = Settings {
        tokens: Tokens::parse(&format!("{ALICE}:admin@alice,{BOB}:admin@bob")).expect("tokens"),
        four_eyes: true,
        ..Settings::default()
    };
    let app = spawn_command_with(pool.clone(), settings).await;
    let url = app.base.clone();

    // What is live prints as a file publish takes.
    let live = policy(&url, ALICE, &["show"]).await.expect("show");
    assert!(
        live.starts_with(&format!("version = \"{DEFAULT}\"")),
        "{live}"
    );
    let parsed = domain::policy::from_toml(&live).expect("show prints a policy file");
    assert_eq!(parsed, domain::Ruleset::default());

    // A draft: every transaction alerts (p3 = 0), and an expression rule.
    let draft = live
        .replacen(DEFAULT, "t-night", 1)
        .replacen("p3 = 0.3", "p3 = 0.0", 1)
        + BIG_SPEND;
    let draft_file = file("draft", &draft);
    let draft_path = draft_file.to_str().expect("utf-8").to_owned();
    let out = policy(&url, ALICE, &["publish", &draft_path, "--shadow"])
        .await
        .expect("publish");
    assert_eq!(out.trim(), "published t-night (shadow)");
    let again = policy(&url, ALICE, &["publish", &draft_path])
        .await
        .expect_err("a version is published once");
    assert!(
        again.contains("already exists") && again.contains("409"),
        "{again}"
    );

    // Refused here, naming the rule, with no server to ask.
    let empty = file(
        "empty",
        &(live.replacen(DEFAULT, "t-empty", 1)
            + "\n[[expression_rules]]\nname = \"hollow\"\nexpression = \"\"\nweight = 0.1\n"),
    );
    let twice = file(
        "twice",
        &(live.replacen(DEFAULT, "t-twice", 1) + BIG_SPEND + BIG_SPEND),
    );
    for (path, rule) in [(&empty, "hollow"), (&twice, "big_spend")] {
        let error = policy(
            "http://127.0.0.1:9",
            ALICE,
            &["publish", path.to_str().expect("utf-8")],
        )
        .await
        .expect_err("refused");
        assert!(error.contains(rule), "{error}");
    }
    // A good file with the server down fails too, saying so.
    let down = policy("http://127.0.0.1:9", ALICE, &["publish", &draft_path])
        .await
        .expect_err("no server");
    assert!(down.contains("127.0.0.1:9"), "{down}");

    // Decisions with the shadow beside them, and labels.
    for i in 0..6 {
        let (status, body) = app
            .post_with(
                "/v1/transactions",
                &tx(
                    &format!("t-{i}"),
                    &format!("c-{i}"),
                    40.0 + i as f64,
                    10 - i,
                ),
                &[("authorization", &format!("Bearer {ALICE}"))],
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for (id, fraud) in [("t-0", true), ("t-1", false), ("t-2", false)] {
        let (status, body) = app
            .post_with(
                "/v1/labels",
                &json!({"transaction_id": id, "is_fraud": fraud, "source": "test"}),
                &[("authorization", &format!("Bearer {ALICE}"))],
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    let list = policy(&url, ALICE, &["list"]).await.expect("list");
    let row = |v: &str| {
        list.lines()
            .find(|l| l.starts_with(v))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row(DEFAULT).contains(" live "), "{list}");
    assert!(
        row("t-night").contains(" shadow ") && row("t-night").contains("alice"),
        "{list}"
    );

    let diff = policy(&url, ALICE, &["diff", DEFAULT, "t-night"])
        .await
        .expect("diff");
    assert!(diff.contains("priority.p3: 0.3 -> 0.0"), "{diff}");
    assert!(
        diff.contains("expression_rules.big_spend: (none) -> "),
        "{diff}"
    );

    let shown = policy(&url, ALICE, &["show", "t-night"])
        .await
        .expect("show v");
    assert_eq!(
        domain::policy::from_toml(&shown).expect("a policy file"),
        domain::policy::from_toml(&draft).expect("the draft")
    );

    // Compare over the log: live (the default) against the shadow.
    let out = fraudctl(vec![
        "policy".into(),
        "compare".into(),
        "--json".into(),
        "--database-url".into(),
        database_url(&pool),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(c["shadow_version"], "t-night");
    assert_eq!(c["transactions"], 6);
    assert_eq!(c["labelled"], 3);
    assert_eq!(c["shadow"]["alerts"], 6, "p3 = 0 alerts every one: {c}");
    assert_eq!(c["live_versions"][DEFAULT], 6);
    assert_eq!(c["shadow"]["true_positives"], 1);
    assert_eq!(c["shadow"]["false_positives"], 2);

    // Four eyes: alice published it, bob promotes it.
    let refused = policy(&url, ALICE, &["promote", "t-night"])
        .await
        .expect_err("four eyes");
    assert!(
        refused.contains("four eyes") && refused.contains("403"),
        "{refused}"
    );
    let out = policy(&url, BOB, &["promote", "t-night"])
        .await
        .expect("promote");
    assert_eq!(
        out.trim(),
        format!("promoted t-night (was {DEFAULT}) by bob")
    );
    let out = policy(&url, BOB, &["rollback"]).await.expect("rollback");
    assert_eq!(out.trim(), format!("rolled back from t-night to {DEFAULT}"));
    let nothing = policy(&url, BOB, &["rollback"])
        .await
        .expect_err("nothing earlier");
    assert!(nothing.contains("409"), "{nothing}");

    let out = policy(&url, ALICE, &["shadow", "t-night"])
        .await
        .expect("shadow");
    assert_eq!(out.trim(), "shadow policy: t-night");
    let out = policy(&url, ALICE, &["shadow", "--clear"])
        .await
        .expect("clear");
    assert_eq!(out.trim(), "shadow policy cleared");
    let unknown = policy(&url, ALICE, &["show", "nope"])
        .await
        .expect_err("404");
    assert!(unknown.contains("404"), "{unknown}");

    // The backtest's old flag name still reads a draft.
    let out = fraudctl(vec![
        "backtest".into(),
        "--ruleset".into(),
        draft_path.clone(),
        "--show".into(),
        "2".into(),
        "--database-url".into(),
        database_url(&pool),
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("backtest: draft t-night"), "{text}");
    assert!(text.contains("transactions decided differently"), "{text}");

    for p in [draft_file, empty, twice] {
        std::fs::remove_file(p).ok();
    }
}
