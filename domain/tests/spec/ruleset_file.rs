//! The ruleset file: the shipped default is `Ruleset::default()` and fills
//! what another ruleset leaves out, and a bad ruleset cannot be loaded.

use domain::Ruleset;
use domain::ruleset::DEFAULT_TOML;

#[test]
fn the_default_file_matches_the_default_ruleset() {
    let from_file: Ruleset = toml::from_str(DEFAULT_TOML).unwrap();
    assert_eq!(from_file, Ruleset::default());
}

#[test]
fn a_ruleset_round_trips_through_json() {
    let json = serde_json::to_value(Ruleset::default()).unwrap();
    let back: Ruleset = serde_json::from_value(json).unwrap();
    assert_eq!(back, Ruleset::default());
}

fn load_edited(from: &str, to: &str) -> Result<Ruleset, String> {
    assert!(DEFAULT_TOML.contains(from), "{from}");
    toml::from_str(&DEFAULT_TOML.replacen(from, to, 1)).map_err(|e| e.to_string())
}

#[test]
fn bad_rulesets_are_refused_with_the_key_named() {
    let cases = [
        ("weight = 0.15", "weight = 1.5", "velocity_count.weight"),
        ("review = 0.4", "review = 0.9", "review <= decline"),
        ("p0 = 0.9", "p0 = 0.2", "p3 <= p2"),
        (
            "retention_secs = 172800",
            "retention_secs = 3600",
            "retention_secs",
        ),
        ("version = \"2026.2-default\"", "version = \"\"", "version"),
        (
            "max_cities = 2, window_secs = 7200",
            "max_cities = 2, window_secs = 0",
            "window",
        ),
        (
            "enabled = true\nweight = 0.7",
            "enabled = true\nweight = 0.7\ntypo = 1",
            "typo",
        ),
        (
            "max_speed_kmh = 900.0",
            "max_speed_kmh = -1.0",
            "max_speed_kmh",
        ),
        ("night = [0, 5]", "night = [0, 24]", "unusual_hour.night"),
        ("night = [0, 5]", "night = [3, 3]", "unusual_hour.night"),
        (
            "min_ratio = 2.0",
            "min_ratio = -1.0",
            "new_category.min_ratio",
        ),
        ("max_ratio = 0.25", "max_ratio = 0.0", "card_testing"),
        (
            "categories = [\"gift_cards\"",
            "categories = [\"\"",
            "categories",
        ),
    ];
    for (from, to, expected) in cases {
        let err = load_edited(from, to).expect_err(to);
        assert!(err.contains(expected), "{to}: {err}");
    }
}

#[test]
fn lateness_and_history_may_be_left_out() {
    let trimmed = DEFAULT_TOML
        .replacen("[lateness]", "[ignored_lateness]", 1)
        .replacen("[history]", "[ignored_history]", 1);
    // Unknown tables are refused...
    assert!(toml::from_str::<Ruleset>(&trimmed).is_err());
    // ...but absent ones default.
    let start = DEFAULT_TOML.find("[lateness]").unwrap();
    let end = DEFAULT_TOML.find("[decision]").unwrap();
    let without = format!("{}{}", &DEFAULT_TOML[..start], &DEFAULT_TOML[end..]);
    assert_eq!(
        toml::from_str::<Ruleset>(&without).unwrap(),
        Ruleset::default()
    );
}

#[test]
fn a_left_out_later_rule_is_off_with_the_default_files_thresholds() {
    let start = DEFAULT_TOML.find("[rules.card_testing]").unwrap();
    let without: Ruleset = toml::from_str(&DEFAULT_TOML[..start]).unwrap();
    let default = Ruleset::default();
    assert!(!without.rules.card_testing.enabled);
    assert_eq!(without.rules.card_testing.weight, 0.0);
    assert_eq!(
        without.rules.card_testing.thresholds,
        default.rules.card_testing.thresholds
    );
}

#[test]
fn left_out_history_bounds_come_from_the_default_file() {
    let without: Ruleset = toml::from_str(
        &DEFAULT_TOML
            .replacen("max_devices = 8", "", 1)
            .replacen("max_countries = 32", "", 1),
    )
    .unwrap();
    assert_eq!(without, Ruleset::default());
}
