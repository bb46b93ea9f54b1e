//! Twenty typical expression rules (thresholds over the catalogue, string
//! tests on the transaction, lists, presence), shared by the benches that
//! time expression rules alone (`expressions`) and inside `decide` (`decide`).

pub const RULES: [&str; 20] = [
    "f.amount > 5000",
    "f.amount_to_mean > 5 && f.history_count >= 5",
    "tx.country in ['NG', 'RU', 'KP', 'IR', 'VE']",
    "has(tx.country) && tx.country != 'US' && f.first_country == 1",
    "tx.transaction_type == 'withdrawal' && f.is_night == 1",
    "f.count_1h >= 5",
    "f.sum_1d > 10000 || f.sum_1h > 3000",
    "tx.category in ['gambling', 'crypto', 'gift_cards'] && f.amount > 200",
    "has(f.amount_zscore) && f.amount_zscore > 4",
    "tx.payment_method == 'digital_wallet' && f.first_device == 1",
    "f.speed_from_previous_kmh > 900",
    "f.merchant_fraud_rate_30d > 0.05 && f.merchant_transactions_30d >= 50",
    "f.category_fraud_rate_7d > 0.1",
    "tx.hour_local in [1, 2, 3, 4] && f.hour_band_share < 0.05",
    "!tx.card_present && tx.amount > 1000",
    "tx.merchant_id.startsWith('m-risk') || tx.city == 'Lagos'",
    "f.secs_since_previous < 30 && f.count_1h > 2",
    "f.km_from_home > 1000 && tx.device_type == 'web'",
    "f.rule_velocity_count_hit + f.rule_velocity_amount_hit + f.rule_card_testing_hit >= 2",
    "tx.currency != 'USD' && f.amount > 2000",
];
