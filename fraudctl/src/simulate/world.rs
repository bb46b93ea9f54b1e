//! The simulator's world: real cities (coordinates, currency, UTC offset)
//! grouped by currency zone for legitimate travel, far cities for fraud, and
//! the merchant categories with how each is paid (in store or online).

/// A city customers live in or travel to.
#[derive(Debug, PartialEq)]
pub struct City {
    pub name: &'static str,
    pub state: Option<&'static str>,
    pub country: &'static str,
    pub currency: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// Standard-time offset from UTC in hours (daylight saving is ignored:
    /// it shifts habits by an hour twice a year, which no rule here sees).
    pub utc_offset: i32,
}

const fn city(
    name: &'static str,
    state: Option<&'static str>,
    country: &'static str,
    currency: &'static str,
    lat: f64,
    lon: f64,
    utc_offset: i32,
) -> City {
    City {
        name,
        state,
        country,
        currency,
        lat,
        lon,
        utc_offset,
    }
}

/// Home cities. Legitimate travel stays within a currency (a US customer
/// flies to another US city), because the ruleset compares amounts in the
/// transaction's own currency without FX conversion.
pub const HOMES: &[City] = &[
    city("New York", Some("NY"), "US", "USD", 40.7128, -74.0060, -5),
    city(
        "Los Angeles",
        Some("CA"),
        "US",
        "USD",
        34.0522,
        -118.2437,
        -8,
    ),
    city("Chicago", Some("IL"), "US", "USD", 41.8781, -87.6298, -6),
    city("Houston", Some("TX"), "US", "USD", 29.7604, -95.3698, -6),
    city("Phoenix", Some("AZ"), "US", "USD", 33.4484, -112.0740, -7),
    city(
        "Philadelphia",
        Some("PA"),
        "US",
        "USD",
        39.9526,
        -75.1652,
        -5,
    ),
    city("San Diego", Some("CA"), "US", "USD", 32.7157, -117.1611, -8),
    city("Dallas", Some("TX"), "US", "USD", 32.7767, -96.7970, -6),
    city(
        "San Francisco",
        Some("CA"),
        "US",
        "USD",
        37.7749,
        -122.4194,
        -8,
    ),
    city("Seattle", Some("WA"), "US", "USD", 47.6062, -122.3321, -8),
    city("Miami", Some("FL"), "US", "USD", 25.7617, -80.1918, -5),
    city("Boston", Some("MA"), "US", "USD", 42.3601, -71.0589, -5),
    city("Denver", Some("CO"), "US", "USD", 39.7392, -104.9903, -7),
    city("Atlanta", Some("GA"), "US", "USD", 33.7490, -84.3880, -5),
    city("Toronto", Some("ON"), "CA", "CAD", 43.6532, -79.3832, -5),
    city("Vancouver", Some("BC"), "CA", "CAD", 49.2827, -123.1207, -8),
    city("Montreal", Some("QC"), "CA", "CAD", 45.5019, -73.5674, -5),
    city("London", None, "GB", "GBP", 51.5074, -0.1278, 0),
    city("Manchester", None, "GB", "GBP", 53.4808, -2.2426, 0),
    city("Edinburgh", None, "GB", "GBP", 55.9533, -3.1883, 0),
    city("Paris", None, "FR", "EUR", 48.8566, 2.3522, 1),
    city("Berlin", None, "DE", "EUR", 52.5200, 13.4050, 1),
    city("Madrid", None, "ES", "EUR", 40.4168, -3.7038, 1),
    city("Amsterdam", None, "NL", "EUR", 52.3676, 4.9041, 1),
    city("Rome", None, "IT", "EUR", 41.9028, 12.4964, 1),
    city("Dublin", None, "IE", "EUR", 53.3498, -6.2603, 0),
    city("Sydney", Some("NSW"), "AU", "AUD", -33.8688, 151.2093, 10),
    city(
        "Melbourne",
        Some("VIC"),
        "AU",
        "AUD",
        -37.8136,
        144.9631,
        10,
    ),
    city("Singapore", None, "SG", "SGD", 1.3521, 103.8198, 8),
];

/// The first this many of [`HOMES`] are in the United States (most customers
/// live there).
pub const US_HOMES: usize = 14;

/// Where stolen cards are used: far from most homes, other countries.
pub const FAR: &[City] = &[
    city("Lagos", None, "NG", "NGN", 6.5244, 3.3792, 1),
    city("Dubai", None, "AE", "AED", 25.2048, 55.2708, 4),
    city("Mumbai", Some("MH"), "IN", "INR", 19.0760, 72.8777, 5),
    city("Tokyo", None, "JP", "JPY", 35.6762, 139.6503, 9),
    city("Seoul", None, "KR", "KRW", 37.5665, 126.9780, 9),
    city("Hong Kong", None, "HK", "HKD", 22.3193, 114.1694, 8),
    city("São Paulo", Some("SP"), "BR", "BRL", -23.5505, -46.6333, -3),
    city("Johannesburg", None, "ZA", "ZAR", -26.2041, 28.0473, 2),
    city("Mexico City", None, "MX", "MXN", 19.4326, -99.1332, -6),
    city("Bucharest", None, "RO", "RON", 44.4268, 26.1025, 2),
    city("Jakarta", None, "ID", "IDR", -6.2088, 106.8456, 7),
    city("Bangkok", None, "TH", "THB", 13.7563, 100.5018, 7),
];

/// How a category is bought: at a terminal (card-present, where the
/// customer stands) or through an app or a website.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    InStore,
    App,
    Online,
}

/// A merchant category and how it is bought.
#[derive(Debug)]
pub struct Category {
    pub name: &'static str,
    pub channel: Channel,
}

const fn cat(name: &'static str, channel: Channel) -> Category {
    Category { name, channel }
}

/// Every category the simulator uses; personas refer to them by index.
pub const CATEGORIES: &[Category] = &[
    cat("coffee_shop", Channel::InStore),        // 0
    cat("restaurants", Channel::InStore),        // 1
    cat("online_retail", Channel::Online),       // 2
    cat("ride_sharing", Channel::App),           // 3
    cat("grocery", Channel::InStore),            // 4
    cat("gas_station", Channel::InStore),        // 5
    cat("family_restaurants", Channel::InStore), // 6
    cat("pharmacy", Channel::InStore),           // 7
    cat("medical", Channel::InStore),            // 8
    cat("local_merchant", Channel::InStore),     // 9
    cat("food_delivery", Channel::App),          // 10
    cat("entertainment", Channel::Online),       // 11
    cat("clothing", Channel::InStore),           // 12
    cat("home_improvement", Channel::InStore),   // 13
    cat("utilities", Channel::Online),           // 14
    cat("bookstore", Channel::InStore),          // 15
    cat("streaming", Channel::Online),           // 16
    cat("hotel", Channel::InStore),              // 17
    cat("electronics", Channel::InStore),        // 18
    cat("jewelry", Channel::InStore),            // 19
    cat("gift_cards", Channel::Online),          // 20
    cat("crypto_exchange", Channel::Online),     // 21
    cat("luxury_goods", Channel::InStore),       // 22
];

pub const HOTEL: usize = 17;
pub const ELECTRONICS: usize = 18;
pub const JEWELRY: usize = 19;
pub const GIFT_CARDS: usize = 20;
pub const CRYPTO: usize = 21;
pub const LUXURY: usize = 22;
pub const ONLINE_RETAIL: usize = 2;

pub const MOBILE_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 Chrome/123.0 Mobile Safari/537.36",
];

pub const WEB_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
];

/// What a fraudster's browser looks like: headless or oddly old.
pub const FRAUD_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 HeadlessChrome/109.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/99.0 Safari/537.36",
];

/// A point `km` at most from (`lat`, `lon`), for a uniform draw `u`, `v` in [0, 1).
pub fn offset(lat: f64, lon: f64, km: f64, u: f64, v: f64) -> (f64, f64) {
    let r = km * u.sqrt();
    let theta = std::f64::consts::TAU * v;
    let dlat = r * theta.sin() / 111.0;
    let dlon = r * theta.cos() / (111.0 * lat.to_radians().cos().max(0.1));
    (round6(lat + dlat), round6(lon + dlon))
}

pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Great-circle distance in kilometres.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}
