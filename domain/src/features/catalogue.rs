//! The catalogue itself: every feature's name, kind and meaning, in the
//! order of the values in `Features`. docs/detection.md prints this table
//! (`fraudctl features list` writes it from here).

/// Bump when any feature's meaning changes (models record it).
pub const VERSION: u32 = 1;

/// What a value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// In the transaction's own currency (no conversion).
    Amount,
    Count,
    /// A dimensionless ratio or share.
    Ratio,
    Seconds,
    /// 0 or 1.
    Flag,
    /// 0..23.
    Hour,
    Km,
    KmPerHour,
    /// Known fraud per transaction, 0..1.
    Rate,
    /// A rule's observed value, in that rule's own unit.
    Observed,
}

/// One feature of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    pub id: F,
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

macro_rules! catalogue {
    ($($variant:ident = $name:literal, $kind:ident, $doc:literal;)+) => {
        /// A feature's index in the catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum F {
            $($variant,)+
        }

        /// Every feature, in value order.
        pub const CATALOGUE: &[Feature] = &[
            $(Feature { id: F::$variant, name: $name, kind: Kind::$kind, doc: $doc },)+
        ];

        /// How many features there are.
        pub const COUNT: usize = [$(F::$variant),+].len();
    };
}

pub(super) fn index_of(name: &str) -> Option<usize> {
    CATALOGUE.iter().position(|f| f.name == name)
}

catalogue! {
    Amount = "amount", Amount, "The transaction's amount.";
    LogAmount = "log_amount", Ratio, "ln(1 + amount).";
    Count1h = "count_1h", Count, "The customer's transactions in the hour up to this one's event time.";
    Sum1h = "sum_1h", Amount, "Their amounts' sum.";
    Mean1h = "mean_1h", Amount, "Their mean amount (unknown without any).";
    Count1d = "count_1d", Count, "The customer's transactions in the 24 hours up to this one.";
    Sum1d = "sum_1d", Amount, "Their amounts' sum.";
    Mean1d = "mean_1d", Amount, "Their mean amount.";
    Count7d = "count_7d", Count, "The customer's transactions on the 6 UTC days before this one's day and on its day up to its time.";
    Sum7d = "sum_7d", Amount, "Their amounts' sum.";
    Mean7d = "mean_7d", Amount, "Their mean amount.";
    Count30d = "count_30d", Count, "The same over the 29 days before and today up to this one.";
    Sum30d = "sum_30d", Amount, "Their amounts' sum.";
    Mean30d = "mean_30d", Amount, "Their mean amount.";
    HistoryCount = "history_count", Count, "Every transaction of the customer recorded before this one.";
    AmountToMean = "amount_to_mean", Ratio, "Amount over the customer's mean amount of all time.";
    AmountToCategoryMean = "amount_to_category_mean", Ratio, "Amount over the customer's mean in this merchant category (unknown for a first use).";
    AmountToKindMean = "amount_to_kind_mean", Ratio, "Amount over the customer's mean for this kind (withdrawals against withdrawals, else purchases).";
    AmountZscore = "amount_zscore", Ratio, "(amount - mean) / standard deviation, over all the customer's amounts (unknown under 2).";
    SecsSincePrevious = "secs_since_previous", Seconds, "Seconds since the customer's previous transaction at or before this one's time.";
    LocalHour = "local_hour", Hour, "Hour of day in local solar time where the card holder is.";
    IsNight = "is_night", Flag, "Local hour 0..5.";
    IsWeekend = "is_weekend", Flag, "Local Saturday or Sunday.";
    HourBandShare = "hour_band_share", Ratio, "The customer's own share of past transactions within an hour of this local hour (unknown without history).";
    FirstMerchant = "first_merchant", Flag, "The customer never paid this merchant before (unknown past the remembered merchants).";
    FirstCategory = "first_category", Flag, "The customer never used this merchant category before.";
    FirstDevice = "first_device", Flag, "The device (user agent + IP) is new for the customer (unknown without device details).";
    FirstCountry = "first_country", Flag, "The customer never transacted in this country before (unknown without a place).";
    KmFromHome = "km_from_home", Km, "Distance from the customer's most used card-present place.";
    KmFromPreviousPlace = "km_from_previous_place", Km, "Distance from the previous card-present place.";
    SpeedFromPreviousKmh = "speed_from_previous_kmh", KmPerHour, "That distance over the time since (at least a minute).";
    CardPresent = "card_present", Flag, "Made at a terminal or an ATM with a place.";
    MerchantFraudRate1d = "merchant_fraud_rate_1d", Rate, "Known fraud per transaction at this merchant on the UTC day before (labels known before this transaction).";
    MerchantFraudRate7d = "merchant_fraud_rate_7d", Rate, "The same over the 7 days before this transaction's day.";
    MerchantFraudRate30d = "merchant_fraud_rate_30d", Rate, "The same over the 30 days before.";
    MerchantTransactions30d = "merchant_transactions_30d", Count, "Transactions at this merchant over those 30 days (every customer).";
    MerchantFraud30d = "merchant_fraud_30d", Count, "Of them, known fraud.";
    CategoryFraudRate1d = "category_fraud_rate_1d", Rate, "Known fraud per transaction in this merchant category on the day before.";
    CategoryFraudRate7d = "category_fraud_rate_7d", Rate, "The same over the 7 days before.";
    CategoryFraudRate30d = "category_fraud_rate_30d", Rate, "The same over the 30 days before.";
    RuleVelocityCountHit = "rule_velocity_count_hit", Flag, "The velocity_count rule fired.";
    RuleVelocityCountValue = "rule_velocity_count_value", Observed, "What it observed (unknown when it did not fire).";
    RuleVelocityAmountHit = "rule_velocity_amount_hit", Flag, "The velocity_amount rule fired.";
    RuleVelocityAmountValue = "rule_velocity_amount_value", Observed, "What it observed.";
    RuleImpossibleTravelHit = "rule_impossible_travel_hit", Flag, "The impossible_travel rule fired.";
    RuleImpossibleTravelValue = "rule_impossible_travel_value", Observed, "What it observed.";
    RuleDistinctCitiesHit = "rule_distinct_cities_hit", Flag, "The distinct_cities rule fired.";
    RuleDistinctCitiesValue = "rule_distinct_cities_value", Observed, "What it observed.";
    RuleAmountAnomalyHit = "rule_amount_anomaly_hit", Flag, "The amount_anomaly rule fired.";
    RuleAmountAnomalyValue = "rule_amount_anomaly_value", Observed, "What it observed.";
    RuleNewCategoryHit = "rule_new_category_hit", Flag, "The new_category rule fired.";
    RuleNewCategoryValue = "rule_new_category_value", Observed, "What it observed.";
    RuleUnusualHourHit = "rule_unusual_hour_hit", Flag, "The unusual_hour rule fired.";
    RuleUnusualHourValue = "rule_unusual_hour_value", Observed, "What it observed.";
    RuleWithdrawalSequenceHit = "rule_withdrawal_sequence_hit", Flag, "The withdrawal_sequence rule fired.";
    RuleWithdrawalSequenceValue = "rule_withdrawal_sequence_value", Observed, "What it observed.";
    RuleNewDeviceHit = "rule_new_device_hit", Flag, "The new_device rule fired.";
    RuleNewDeviceValue = "rule_new_device_value", Observed, "What it observed.";
    RuleAmountAboveUsualHit = "rule_amount_above_usual_hit", Flag, "The amount_above_usual rule fired.";
    RuleAmountAboveUsualValue = "rule_amount_above_usual_value", Observed, "What it observed.";
    RuleAlertFollowUpHit = "rule_alert_follow_up_hit", Flag, "The alert_follow_up rule fired.";
    RuleAlertFollowUpValue = "rule_alert_follow_up_value", Observed, "What it observed.";
    RuleNewCountryHit = "rule_new_country_hit", Flag, "The new_country rule fired.";
    RuleNewCountryValue = "rule_new_country_value", Observed, "What it observed.";
    RuleCardTestingHit = "rule_card_testing_hit", Flag, "The card_testing rule fired.";
    RuleCardTestingValue = "rule_card_testing_value", Observed, "What it observed.";
}

/// Each rule's (hit, value) features, in `RuleId::ALL` order.
pub(super) const RULES: [(F, F); 13] = [
    (F::RuleVelocityCountHit, F::RuleVelocityCountValue),
    (F::RuleVelocityAmountHit, F::RuleVelocityAmountValue),
    (F::RuleImpossibleTravelHit, F::RuleImpossibleTravelValue),
    (F::RuleDistinctCitiesHit, F::RuleDistinctCitiesValue),
    (F::RuleAmountAnomalyHit, F::RuleAmountAnomalyValue),
    (F::RuleNewCategoryHit, F::RuleNewCategoryValue),
    (F::RuleUnusualHourHit, F::RuleUnusualHourValue),
    (F::RuleWithdrawalSequenceHit, F::RuleWithdrawalSequenceValue),
    (F::RuleNewDeviceHit, F::RuleNewDeviceValue),
    (F::RuleAmountAboveUsualHit, F::RuleAmountAboveUsualValue),
    (F::RuleAlertFollowUpHit, F::RuleAlertFollowUpValue),
    (F::RuleNewCountryHit, F::RuleNewCountryValue),
    (F::RuleCardTestingHit, F::RuleCardTestingValue),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleId;

    #[test]
    fn names_are_unique_identifiers_in_value_order() {
        let mut seen = std::collections::HashSet::new();
        for (i, f) in CATALOGUE.iter().enumerate() {
            assert_eq!(f.id as usize, i, "{} out of order", f.name);
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert!(
                f.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is not an identifier",
                f.name
            );
            assert!(!f.doc.is_empty());
        }
    }

    #[test]
    fn every_rule_has_its_hit_and_value_features() {
        for (rule, (hit, value)) in RuleId::ALL.iter().zip(RULES) {
            assert_eq!(CATALOGUE[hit as usize].name, format!("rule_{rule}_hit"));
            assert_eq!(CATALOGUE[value as usize].name, format!("rule_{rule}_value"));
        }
    }
}
