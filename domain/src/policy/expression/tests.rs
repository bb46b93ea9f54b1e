//! The expression language's behaviour: what is refused at compile time and
//! why, and what evaluating gives on full and minimal transactions.

use super::*;
use crate::features::F;
use crate::geo::{Coordinates, CountryCode};
use crate::ids::{CustomerId, MerchantId, TransactionId};
use crate::money::{Amount, Currency};
use crate::text::{MerchantCategory, PlaceName};
use crate::transaction::{
    DeviceInfo, DeviceType, InputSchema, Location, PaymentMethod, TransactionType,
};
use chrono::DateTime;

/// A full v2 transaction: a 950 NGN debit-card withdrawal at a POS in Lagos.
fn lagos() -> Transaction {
    Transaction {
        transaction_id: TransactionId::parse("t-1").unwrap(),
        customer_id: CustomerId::parse("c-42").unwrap(),
        timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        amount: Amount::parse(950.0).unwrap(),
        currency: Some(Currency::parse("NGN").unwrap()),
        merchant_id: Some(MerchantId::parse("m-atm-7").unwrap()),
        merchant_category: Some(MerchantCategory::parse("Cash").unwrap()),
        transaction_type: Some(TransactionType::Withdrawal),
        payment_method: Some(PaymentMethod::DebitCard),
        location: Some(Location {
            city: PlaceName::parse("Lagos").unwrap(),
            state: None,
            country: CountryCode::parse("NG").unwrap(),
            coordinates: Coordinates::new(6.45, 3.39).unwrap(),
        }),
        device_info: Some(DeviceInfo::new(DeviceType::Pos, None, None)),
        input_schema: InputSchema::V2,
    }
}

/// A schema v1 transaction: no merchant, place or device.
fn minimal() -> Transaction {
    Transaction::v1(
        TransactionId::parse("t-2").unwrap(),
        CustomerId::parse("c-7").unwrap(),
        DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        Amount::parse(12.5).unwrap(),
        None,
    )
}

fn features() -> Features {
    let mut f = Features::default();
    f.set(F::Amount, 950.0);
    f.set(F::AmountToMean, 6.25);
    f.set(F::Count1h, 4.0);
    f.set(F::LocalHour, 3.0);
    f.set_flag(F::FirstCountry, true);
    f
}

fn eval_on(source: &str, tx: &Transaction, f: &Features) -> Result<bool, EvalError> {
    Compiled::compile(source)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
        .evaluate(tx, f)
}

/// On the Lagos transaction with `features()`.
fn eval(source: &str) -> bool {
    eval_on(source, &lagos(), &features()).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn error(source: &str) -> ExpressionError {
    match Compiled::compile(source) {
        Ok(c) => panic!("{source} compiled: {c:?}"),
        Err(e) => e,
    }
}

fn message(source: &str) -> String {
    error(source).to_string()
}

// ---- compile errors -------------------------------------------------------

#[test]
fn a_syntax_error_says_where() {
    let e = error("f.amount > ");
    assert!(matches!(e, ExpressionError::Syntax { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "syntax error at column 12: the expression ends too early"
    );
    let e = error("f.amount >> 5");
    assert!(matches!(e, ExpressionError::Syntax { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("syntax error at column 11"),
        "{e}"
    );
    assert_eq!(
        message("f.amount = 5"),
        "syntax error at column 10: unexpected '=' (compare with ==)"
    );
    assert_eq!(
        message("tx.city == 'Lagos"),
        "syntax error at column 12: a string is not closed"
    );
    assert_eq!(
        message("(f.amount > 5"),
        "syntax error at column 14: missing ')' at the end"
    );
    assert_eq!(error("   "), ExpressionError::Empty);
}

#[test]
fn an_unknown_feature_is_refused_with_a_suggestion() {
    assert_eq!(
        error("f.amout > 100"),
        ExpressionError::UnknownFeature {
            at: Position { line: 1, column: 1 },
            name: "amout".into(),
            suggestion: Some("f.amount".into()),
        }
    );
    assert_eq!(
        message("tx.country == 'NG' && f.amout > 100"),
        "unknown feature f.amout (did you mean f.amount?) at column 23"
    );
    // A transaction field asked of the catalogue: pointed at tx.
    assert_eq!(
        message("f.city == 'Lagos'"),
        "unknown feature f.city (did you mean tx.city?) at column 1"
    );
    assert_eq!(
        message("f.velocity > 1"),
        "unknown feature f.velocity at column 1"
    );
}

#[test]
fn an_unknown_transaction_field_is_refused_with_a_suggestion() {
    assert_eq!(
        message("tx.contry == 'NG'"),
        "unknown transaction field tx.contry (did you mean tx.country?) at column 1"
    );
    // The JSON API's names and nesting point at ours.
    assert_eq!(
        message("tx.merchant_category == 'cash'"),
        "unknown transaction field tx.merchant_category (did you mean tx.category?) at column 1"
    );
    assert_eq!(
        message("tx.location.city == 'Lagos'"),
        "unknown transaction field tx.location.city (did you mean tx.city?) at column 1"
    );
    assert_eq!(
        message("tx.count_1h > 3"),
        "unknown transaction field tx.count_1h (did you mean f.count_1h?) at column 1"
    );
    assert!(message("tx.amount.cents > 1").contains("tx.amount is a single value"));
}

#[test]
fn unknown_names_are_refused() {
    assert_eq!(
        message("amount > 5"),
        "unknown name amount (did you mean tx.amount?) at column 1 (an expression reads tx.FIELD and f.FEATURE)"
    );
    assert!(message("user.age > 5").starts_with("unknown name user at column 1"));
    assert!(message("f > 5").contains("f is the feature catalogue"));
}

#[test]
fn a_type_mismatch_says_which_types_and_where() {
    assert_eq!(
        message("tx.amount > 'x'"),
        "cannot compare number with string at column 11"
    );
    assert_eq!(
        message("f.amount == tx.country"),
        "cannot compare number with string at column 10"
    );
    assert!(message("tx.city + 1 == 'x'").starts_with("cannot add string and number"));
    assert!(message("tx.city * 2 > 1").starts_with("`*` needs numbers, not string and number"));
    assert!(message("f.amount && true").starts_with("`&&` needs true or false on both sides"));
    assert!(message("!f.amount").starts_with("`!` needs true or false, not a number"));
    assert!(message("tx.card_present < true").contains("cannot be ordered"));
    assert!(
        message("(f.amount > 1 ? 1 : 'x') == 1")
            .contains("must have one type, not number and string")
    );
    assert!(
        message("tx.country in [1, 2]")
            .starts_with("cannot look for a string in a list holding a number")
    );
    assert!(message("tx.country in ['NG', tx.city]").contains("values written out"));
    assert!(message("tx.country in tx.city").contains("needs a list written out"));
    assert!(message("size(f.amount) > 1").starts_with("size needs a string, not a number"));
    assert!(message("int(tx.city) > 1").starts_with("int takes a number here, not a string"));
    assert!(
        message("tx.city.startsWith(1)")
            .starts_with("startsWith needs strings, not string and number")
    );
    assert!(message("startsWith(tx.city, 'L')").contains("is a method: write s.startsWith(x)"));
}

#[test]
fn a_result_that_is_not_a_bool_is_refused() {
    assert_eq!(
        message("f.amount * 2"),
        "the expression is a number, a rule needs true or false"
    );
    assert_eq!(
        error("tx.city"),
        ExpressionError::NotBool {
            found: Type::String
        }
    );
}

#[test]
fn an_unknown_function_is_refused_with_a_suggestion() {
    assert_eq!(
        message("tx.city.startswith('L')"),
        "unknown function startswith (did you mean startsWith?) at column 9"
    );
    assert_eq!(
        message("matches(tx.city, 'L.*')"),
        "unknown function matches at column 1"
    );
}

#[test]
fn the_rest_of_cel_is_refused_by_name() {
    assert!(message("[1, 2].exists(x, x > 1)").starts_with("list macros"));
    assert!(message("{'a': 1} == {'a': 1}").starts_with("maps are not supported"));
    assert!(message("tx.city == null").starts_with("null (test presence with has(...))"));
    assert!(message("[1, 2][0] == 1").contains("not supported"));
    assert!(message("b'x' == b'x'").starts_with("bytes are not supported"));
}

#[test]
fn a_comparison_that_can_never_be_true_is_refused() {
    assert_eq!(
        message("tx.transaction_type == 'withdrawl'"),
        "tx.transaction_type is never 'withdrawl' (it is one of purchase, refund, withdrawal) at column 21"
    );
    assert!(message("tx.country in ['NG', 'ru']").contains("write 'RU'"));
    assert!(message("'ng' != tx.country").contains("write 'NG'"));
    assert!(message("tx.currency == 'usd'").contains("write 'USD'"));
    assert!(message("tx.category == 'Grocery'").contains("write 'grocery'"));
    assert!(message("tx.device_type == 'atm'").contains("mobile, web, pos"));
    // Ordering comparisons and other fields are not second-guessed.
    assert!(Compiled::compile("tx.city == 'lagos' || tx.country > 'M'").is_ok());
}

#[test]
fn very_long_or_deep_expressions_are_refused_without_crashing() {
    let long = format!("f.amount > {}", "1".repeat(5000));
    assert!(matches!(error(&long), ExpressionError::TooLong { .. }));
    let chain = format!("f.amount {} > 1", "+ 1 ".repeat(200));
    assert!(matches!(error(&chain), ExpressionError::TooDeep { .. }));
    // Shapes that recurse in the parser: refused or accepted, never a
    // stack overflow (which would abort the process).
    for n in [20, 90, 95, 200, 900] {
        for source in [
            format!("{}true{}", "(".repeat(n), ")".repeat(n)),
            format!("{}1{} > 0", "max(1, ".repeat(n), ")".repeat(n)),
            format!("{}true", "f.amount > 1 ? false : ".repeat(n)),
            format!("1 in {}1{}", "[".repeat(n), "]".repeat(n)),
            format!("{}true", "!".repeat(n)),
            format!("{}f.amount > 1", "-".repeat(n)),
        ] {
            if let Ok(c) = Compiled::compile(&source) {
                let _ = c.evaluate(&lagos(), &features());
            }
        }
    }
    assert_eq!(
        message(&format!("{}true{}", "(".repeat(150), ")".repeat(150))),
        "syntax error at column 97: the expression is nested too deeply"
    );
}

// ---- evaluation -----------------------------------------------------------

#[test]
fn numbers_compare_and_compute_as_floats() {
    assert!(eval("f.amount > 900"));
    assert!(!eval("f.amount > 950"));
    assert!(eval("950 <= f.amount"));
    assert!(eval("tx.amount == 950u && tx.amount == 950.0"));
    assert!(eval("f.amount_to_mean * 2 - 0.5 == 12"));
    assert!(eval("f.count_1h / 8 == 0.5 && f.count_1h % 3 == 1"));
    assert!(eval("-f.count_1h < 0"));
    assert!(eval("tx.amount / 0 > 1000000")); // inf, not an error
    assert!(eval(
        "int(f.amount_to_mean) == 6 && double(f.count_1h) == 4"
    ));
    assert!(eval(
        "max(f.count_1h, 10, 2) == 10 && min(f.count_1h, 10) == 4"
    ));
    assert!(eval("tx.hour_local == 3 && f.local_hour in [0, 1, 2, 3]"));
    assert!(eval("f.amount > 100 ? f.count_1h > 3 : false"));
}

#[test]
fn strings_compare_and_test() {
    assert!(eval("tx.country == 'NG' && tx.city == 'Lagos'"));
    assert!(eval("tx.category == 'cash'")); // stored lower case
    assert!(eval(
        "tx.transaction_type == 'withdrawal' && tx.payment_method == 'debit_card'"
    ));
    assert!(eval("tx.device_type == 'pos' && tx.currency == 'NGN'"));
    assert!(eval(
        "tx.merchant_id.startsWith('m-atm') && tx.customer_id.endsWith('42')"
    ));
    assert!(eval(
        "tx.city.contains('ago') && tx.city.lowerAscii() == 'lagos'"
    ));
    assert!(eval("size(tx.city) == 5 && tx.city.size() == 5"));
    assert!(eval("tx.city + '/' + tx.country == 'Lagos/NG'"));
    assert!(eval("tx.country < 'US'"));
    assert!(!eval("tx.country != 'NG'"));
}

#[test]
fn in_looks_in_the_written_list() {
    assert!(eval("tx.country in ['RU', 'NG']"));
    assert!(!eval("tx.country in ['RU', 'KP']"));
    assert!(!eval("tx.country in []"));
    assert!(eval("f.count_1h in [4, 5]"));
    assert!(!eval("f.count_1h in [-1, 5]"));
    assert!(eval("tx.city.lowerAscii() in ['lagos', 'abuja']"));
    assert!(eval("'NG' in ['NG']"));
}

#[test]
fn has_tests_presence_and_knowledge() {
    assert!(eval(
        "has(tx.merchant_id) && has(tx.country) && has(f.amount)"
    ));
    assert!(!eval("has(f.mean_30d)"));
    let (v1, none) = (minimal(), Features::default());
    assert_eq!(eval_on("has(tx.merchant_id)", &v1, &none), Ok(false));
    assert_eq!(
        eval_on("has(tx.currency) || has(tx.city)", &v1, &none),
        Ok(false)
    );
    assert_eq!(
        eval_on("has(tx.amount) && has(tx.customer_id)", &v1, &none),
        Ok(true)
    );
    assert_eq!(eval_on("has(tx.hour_local)", &v1, &none), Ok(false));
    assert_eq!(eval_on("tx.card_present", &v1, &none), Ok(false));
    assert_eq!(eval_on("tx.card_present", &lagos(), &none), Ok(true));
}

#[test]
fn an_unknown_feature_compares_false_like_ieee() {
    let (tx, none) = (lagos(), Features::default());
    assert_eq!(eval_on("f.mean_30d > 0", &tx, &none), Ok(false));
    assert_eq!(eval_on("f.mean_30d <= 0", &tx, &none), Ok(false));
    assert_eq!(eval_on("f.mean_30d == f.mean_30d", &tx, &none), Ok(false));
    assert_eq!(eval_on("f.mean_30d != 0", &tx, &none), Ok(true));
    assert_eq!(eval_on("f.mean_30d + 1 > 0", &tx, &none), Ok(false));
    assert_eq!(eval_on("max(f.mean_30d, 1) >= 1", &tx, &none), Ok(false));
    assert_eq!(eval_on("f.mean_30d in [0]", &tx, &none), Ok(false));
    assert_eq!(eval_on("tx.hour_local < 24", &tx, &none), Ok(false));
    assert_eq!(
        eval_on("!has(f.mean_30d) || f.mean_30d > 0", &tx, &none),
        Ok(true)
    );
}

#[test]
fn reading_an_absent_field_is_an_error_unless_the_other_side_decides() {
    let (v1, f) = (minimal(), features());
    let absent = Err(EvalError::Absent { field: "country" });
    assert_eq!(eval_on("tx.country == 'NG'", &v1, &f), absent);
    assert_eq!(eval_on("tx.country in ['NG']", &v1, &f), absent);
    assert_eq!(eval_on("!(tx.country == 'NG')", &v1, &f), absent);
    assert_eq!(
        eval_on("tx.country == 'NG' || f.amount < 0", &v1, &f),
        absent
    );
    // The other side decides: the error is absorbed, either order.
    assert_eq!(
        eval_on("tx.country == 'NG' || f.amount > 900", &v1, &f),
        Ok(true)
    );
    assert_eq!(
        eval_on("f.amount > 900 || tx.country == 'NG'", &v1, &f),
        Ok(true)
    );
    assert_eq!(
        eval_on("tx.country == 'NG' && f.amount < 0", &v1, &f),
        Ok(false)
    );
    // Guarded by has(): short-circuit never reads it.
    assert_eq!(
        eval_on("has(tx.country) && tx.country == 'NG'", &v1, &f),
        Ok(false)
    );
    assert_eq!(
        eval_on("!has(tx.city) || tx.city == 'Lagos'", &v1, &f),
        Ok(true)
    );
    let message = eval_on("tx.city == 'x'", &v1, &f).unwrap_err().to_string();
    assert_eq!(
        message,
        "tx.city is absent from this transaction (guard it with has(tx.city))"
    );
}

#[test]
fn and_or_and_the_conditional_short_circuit() {
    let (v1, f) = (minimal(), features());
    // The right side would fail: never evaluated.
    assert_eq!(eval_on("false && tx.city == 'x'", &v1, &f), Ok(false));
    assert_eq!(eval_on("f.amount > 0 || tx.city == 'x'", &v1, &f), Ok(true));
    assert_eq!(
        eval_on("f.amount < 0 && tx.city == 'x'", &v1, &f),
        Ok(false)
    );
    assert_eq!(
        eval_on("has(tx.city) ? tx.city == 'x' : f.amount > 0", &v1, &f),
        Ok(true)
    );
    assert_eq!(
        eval_on("(f.amount > 0 ? tx.city : 'y') == 'x'", &v1, &f),
        Err(EvalError::Absent { field: "city" })
    );
}

// ---- reads and observed ---------------------------------------------------

#[test]
fn reads_lists_each_variable_once_in_source_order() {
    let c = Compiled::compile(
        "f.amount > 900 && (tx.country in ['NG'] || has(tx.merchant_id)) && f.amount_to_mean > 5 && tx.country != 'RU'",
    )
    .unwrap();
    assert_eq!(
        c.reads(),
        [
            "f.amount",
            "tx.country",
            "tx.merchant_id",
            "f.amount_to_mean"
        ]
    );
}

#[test]
fn observed_shows_the_values_read() {
    let c = Compiled::compile(
        "f.amount > 900 && tx.country == 'NG' && f.amount_to_mean > 5 && !has(f.mean_30d) && tx.card_present && tx.hour_local < 5",
    )
    .unwrap();
    assert_eq!(
        c.observed(&lagos(), &features()),
        [
            ("f.amount".to_owned(), "950".to_owned()),
            ("tx.country".to_owned(), "NG".to_owned()),
            ("f.amount_to_mean".to_owned(), "6.25".to_owned()),
            ("f.mean_30d".to_owned(), "unknown".to_owned()),
            ("tx.card_present".to_owned(), "true".to_owned()),
            ("tx.hour_local".to_owned(), "3".to_owned()),
        ]
    );
    let c = Compiled::compile("has(tx.city) || tx.amount > 10").unwrap();
    assert_eq!(
        c.observed(&minimal(), &Features::default()),
        [
            ("tx.city".to_owned(), "absent".to_owned()),
            ("tx.amount".to_owned(), "12.5".to_owned()),
        ]
    );
}

// ---- the API --------------------------------------------------------------

#[test]
fn compiled_compares_by_source_and_debugs_as_it() {
    let a = Compiled::compile("f.amount > 1").unwrap();
    let b = a.clone();
    assert_eq!(a, b);
    assert_ne!(a, Compiled::compile("f.amount > 2").unwrap());
    assert_eq!(a.source(), "f.amount > 1");
    assert_eq!(format!("{a:?}"), "Compiled(\"f.amount > 1\")");
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Compiled>();
}

#[test]
fn a_rule_reads_from_toml_and_json() {
    let rule: ExpressionRule = toml::from_str(
        "name = 'night_cash'\nexpression = \"tx.transaction_type == 'withdrawal' && f.is_night == 1\"\nweight = 0.3\n",
    )
    .unwrap();
    assert!(rule.enabled);
    assert_eq!(rule.description, None);
    assert!(
        rule.compile()
            .unwrap()
            .evaluate(&lagos(), &features())
            .is_ok()
    );
    let json = serde_json::to_value(&rule).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "night_cash", "expression": rule.expression, "weight": 0.3, "enabled": true})
    );
    let back: ExpressionRule = serde_json::from_value(json).unwrap();
    assert_eq!(back, rule);
    let unknown = serde_json::from_str::<ExpressionRule>(
        r#"{"name": "x", "expression": "true", "weight": 1, "colour": "red"}"#,
    );
    assert!(unknown.is_err());
}
