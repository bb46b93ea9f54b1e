//! A customer's legitimate week: how many transactions each day (persona
//! rate, weekend factor, the customer's own activity), at which local hours,
//! in which categories and for how much; in store near home or work, in apps
//! and online from their own phone and laptop; now and then a cash
//! withdrawal or a refund; sometimes a trip to another city (with the flight
//! in between, so the card never moves faster than a plane).

use super::persona::Spec;
use super::population::{Customer, normal, poisson, splitmix, weighted};
use super::tx::SimTx;
use super::world::{self, CATEGORIES, Channel, City, HOMES, HOTEL};
use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub const PAYMENTS: [&str; 3] = ["credit_card", "debit_card", "digital_wallet"];
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The simulated period.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub span_ms: i64,
}

impl Period {
    /// Milliseconds from the start to UTC midnight of day `d` (day 0 is the
    /// start's date).
    fn midnight_ms(&self, d: i64) -> i64 {
        let date = self.start.date_naive();
        let midnight = date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(self.start);
        (midnight - self.start).num_milliseconds() + d * DAY_MS
    }

    fn is_weekend(&self, d: i64) -> bool {
        let day = self.start + Duration::days(d);
        matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
    }

    pub fn days(&self) -> i64 {
        (self.span_ms + DAY_MS - 1) / DAY_MS
    }
}

/// A trip: where, and when the card is there (after the outbound flight,
/// before the return flight lands).
struct Trip {
    city: &'static City,
    hotel_at: (f64, f64),
    /// Leaves home at `depart`, lands at `depart + flight`; back home at
    /// `back + flight`.
    depart: i64,
    back: i64,
    flight: i64,
}

impl Trip {
    fn in_air(&self, at: i64) -> bool {
        (self.depart..self.depart + self.flight).contains(&at)
            || (self.back..self.back + self.flight).contains(&at)
    }

    fn away(&self, at: i64) -> bool {
        (self.depart + self.flight..self.back).contains(&at)
    }
}

/// The customer's own generator for the legitimate timeline.
pub fn rng_for(c: &Customer) -> SmallRng {
    SmallRng::seed_from_u64(splitmix(c.seed ^ 0x7131_e11e))
}

/// Every legitimate transaction of `c` in `period`, in event-time order.
pub fn legit(c: &Customer, period: Period) -> Vec<SimTx> {
    let mut rng = rng_for(c);
    let spec = c.persona.spec();
    let trip = trip(c, period, &mut rng);
    let mut out = Vec::new();
    let offset = i64::from(c.home.utc_offset);
    for d in -1..=period.days() {
        let weekend = period.is_weekend(d);
        let rate = spec.tx_per_day * c.activity * if weekend { spec.weekend } else { 1.0 };
        let hours = if weekend {
            &spec.weekend_hours
        } else {
            &spec.hours
        };
        for _ in 0..poisson(&mut rng, rate) {
            let hour = weighted(&mut rng, hours) as i64;
            let at =
                period.midnight_ms(d) + (hour - offset) * HOUR_MS + rng.random_range(0..HOUR_MS);
            if !(0..period.span_ms).contains(&at) {
                continue;
            }
            if trip.as_ref().is_some_and(|t| t.in_air(at)) {
                continue;
            }
            let away = trip.as_ref().filter(|t| t.away(at));
            let at_work = spec.commutes && !weekend && (9..17).contains(&hour);
            out.push(purchase(c, spec, &mut rng, at, at_work, away));
        }
    }
    if let Some(t) = &trip {
        // Checking in on arrival.
        let mut stay = purchase(
            c,
            spec,
            &mut rng,
            t.depart + t.flight + 1_800_000,
            false,
            Some(t),
        );
        stay.category = CATEGORIES[HOTEL].name;
        stay.merchant = format!("m-hotel-{:04}", rng.random_range(0..2_000));
        stay.amount = cents(180.0 * c.spend * (0.3 * normal(&mut rng)).exp());
        stay.device = "pos";
        stay.ip = None;
        stay.agent = None;
        if (0..period.span_ms).contains(&stay.at_ms) {
            out.push(stay);
        }
    }
    out.sort_by_key(|t| t.at_ms);
    for (i, t) in out.iter_mut().enumerate() {
        t.seq = i as u32;
    }
    out
}

fn trip(c: &Customer, period: Period, rng: &mut SmallRng) -> Option<Trip> {
    let spec = c.persona.spec();
    let chance = (spec.travel * period.span_ms as f64 / (7 * DAY_MS) as f64).min(0.9);
    if !rng.random_bool(chance) || period.span_ms < 3 * DAY_MS {
        return None;
    }
    // Same currency, at least 300 km away.
    let options: Vec<&'static City> = HOMES
        .iter()
        .filter(|h| {
            h.currency == c.home.currency
                && world::distance_km((h.lat, h.lon), (c.home.lat, c.home.lon)) >= 300.0
        })
        .collect();
    if options.is_empty() {
        return None;
    }
    let city = options[rng.random_range(0..options.len())];
    let km = world::distance_km((city.lat, city.lon), (c.home.lat, c.home.lon));
    // Airport to airport at 700 km/h plus two hours on the ground.
    let flight = ((km / 700.0 + 2.0) * HOUR_MS as f64) as i64;
    let depart = rng.random_range(DAY_MS..(period.span_ms - 2 * DAY_MS).max(DAY_MS + 1));
    let back = depart + rng.random_range(DAY_MS..3 * DAY_MS);
    let hotel_at = world::offset(city.lat, city.lon, 5.0, rng.random(), rng.random());
    Some(Trip {
        city,
        hotel_at,
        depart,
        back,
        flight,
    })
}

/// One everyday transaction at `at`.
fn purchase(
    c: &Customer,
    spec: &Spec,
    rng: &mut SmallRng,
    at: i64,
    at_work: bool,
    away: Option<&Trip>,
) -> SimTx {
    let weights: Vec<u32> = spec.basket.iter().map(|b| b.weight).collect();
    let basket = spec.basket[weighted(rng, &weights)];
    let category = &CATEGORIES[basket.category];
    let (city, base) = match away {
        Some(t) => (t.city, t.hotel_at),
        None if at_work => (c.home, c.work_at),
        None => (c.home, c.home_at),
    };
    let payment = if rng.random_bool(0.8) {
        c.payment
    } else {
        weighted(rng, &spec.payments)
    };
    let mut tx = SimTx {
        at_ms: at,
        customer: c.n,
        seq: 0,
        merchant: merchant(c, basket.category, rng, away.is_some()),
        category: category.name,
        amount: cents(basket.median * c.spend * (basket.sigma * normal(rng)).exp()),
        currency: c.home.currency,
        kind: "purchase",
        payment: PAYMENTS[payment],
        city,
        coordinates: base,
        device: "pos",
        ip: None,
        agent: None,
        fraud: None,
    };
    match category.channel {
        Channel::InStore => {
            tx.coordinates = world::offset(base.0, base.1, 3.0, rng.random(), rng.random());
        }
        Channel::App => {
            tx.device = "mobile";
            tx.ip = Some(c.mobile_ip);
            tx.agent = Some(c.mobile_agent);
        }
        Channel::Online => {
            if rng.random_bool(0.6) {
                tx.device = "web";
                tx.ip = Some(c.home_ip);
                tx.agent = Some(c.web_agent);
            } else {
                tx.device = "mobile";
                tx.ip = Some(c.mobile_ip);
                tx.agent = Some(c.mobile_agent);
            }
            if tx.payment == "digital_wallet" && tx.device == "web" {
                tx.payment = "credit_card";
            }
        }
    }
    if rng.random_bool(spec.withdrawals) {
        tx.kind = "withdrawal";
        tx.category = "atm";
        tx.device = "pos";
        tx.ip = None;
        tx.agent = None;
        tx.payment = "debit_card";
        tx.merchant = format!("atm-{:05}", rng.random_range(0..20_000));
        tx.amount = (rng.random_range(40.0..300.0f64) / 20.0).round() * 20.0;
        tx.coordinates = world::offset(base.0, base.1, 3.0, rng.random(), rng.random());
    } else if rng.random_bool(0.01) {
        tx.kind = "refund";
    }
    tx
}

/// A merchant of `category`: mostly one of the customer's few regulars.
fn merchant(c: &Customer, category: usize, rng: &mut SmallRng, away: bool) -> String {
    let n = if !away && rng.random_bool(0.85) {
        let favourite = rng.random_range(0..4u64);
        splitmix(c.seed ^ (category as u64) << 8 ^ favourite) % 5_000
    } else {
        rng.random_range(0..5_000)
    };
    format!("m-{}-{n:04}", CATEGORIES[category].name)
}

pub fn cents(x: f64) -> f64 {
    ((x * 100.0).round() / 100.0).max(0.5)
}
