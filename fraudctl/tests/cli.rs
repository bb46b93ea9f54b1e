//! The fraudctl binary end to end, without a database: `simulate` writes the
//! same traffic and ground truth for the same seed, and `eval --decide`
//! scores it in memory.

use std::path::PathBuf;
use std::process::Command;

fn fraudctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fraudctl"))
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fraudctl-cli-{}-{name}", std::process::id()))
}

fn simulate(seed: u64, tag: &str) -> (Vec<u8>, String) {
    let (out, truth) = (tmp(&format!("{tag}.jsonl")), tmp(&format!("{tag}.csv")));
    let status = fraudctl()
        .args(["simulate", "--customers", "400", "--days", "7", "--seed"])
        .arg(seed.to_string())
        .args(["--start", "2026-01-05T00:00:00Z", "--out"])
        .arg(&out)
        .arg("--truth")
        .arg(&truth)
        .status()
        .expect("runs");
    assert!(status.success());
    let result = (
        std::fs::read(&out).expect("jsonl"),
        std::fs::read_to_string(&truth).expect("truth"),
    );
    std::fs::remove_file(out).ok();
    std::fs::remove_file(truth).ok();
    result
}

#[test]
fn simulate_is_deterministic_for_a_seed_and_labels_fraud() {
    let a = simulate(5, "a");
    let b = simulate(5, "b");
    assert!(a == b, "the same seed gives the same files");
    let c = simulate(6, "c");
    assert!(a.0 != c.0);
    let header = a.1.lines().next().expect("a header");
    assert_eq!(
        header,
        "transaction_id,customer_id,is_fraud,scenario,episode,event_time,amount"
    );
    let fraud = a.1.lines().filter(|l| l.contains(",true,")).count();
    assert!(fraud > 0);
    assert!(
        a.1.lines()
            .filter(|l| l.contains(",true,"))
            .all(|l| l.split(',').nth(3).is_some_and(|s| !s.is_empty())),
        "every fraud row names its scenario"
    );
}

#[test]
fn eval_decides_a_simulation_in_memory() {
    let (out, truth) = (tmp("e.jsonl"), tmp("e.csv"));
    let ok = fraudctl()
        .args([
            "simulate",
            "--customers",
            "300",
            "--days",
            "3",
            "--seed",
            "2",
            "--out",
        ])
        .arg(&out)
        .arg("--truth")
        .arg(&truth)
        .status()
        .expect("runs")
        .success();
    assert!(ok);
    let output = fraudctl()
        .args(["eval", "--json", "--truth"])
        .arg(&truth)
        .arg("--decide")
        .arg(&out)
        .output()
        .expect("runs");
    std::fs::remove_file(out).ok();
    std::fs::remove_file(truth).ok();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(v["missing"], 0);
    assert!(v["overall"]["fraud"].as_u64().unwrap_or(0) > 0);
    assert!(v["overall"]["recall"].as_f64().is_some());
    assert!(v["scenarios"].as_array().is_some_and(|s| !s.is_empty()));
}
