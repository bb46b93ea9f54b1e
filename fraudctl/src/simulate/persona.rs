//! The four personas: what each buys, how much, when, and how it pays.
//!
//! Amounts are medians in the customer's home currency with a log-normal
//! spread per category; hours are local-time weights (morning coffee, lunch,
//! evening) with a weekend factor on the daily rate.

/// Who a customer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Persona {
    YoungProfessional,
    Family,
    Senior,
    Student,
}

impl Persona {
    pub const ALL: [Persona; 4] = [
        Persona::YoungProfessional,
        Persona::Family,
        Persona::Senior,
        Persona::Student,
    ];

    pub fn spec(self) -> &'static Spec {
        match self {
            Persona::YoungProfessional => &YOUNG_PROFESSIONAL,
            Persona::Family => &FAMILY,
            Persona::Senior => &SENIOR,
            Persona::Student => &STUDENT,
        }
    }
}

/// One category in a persona's basket: its index in `world::CATEGORIES`,
/// how often, the median amount and the log-normal spread.
#[derive(Debug, Clone, Copy)]
pub struct Basket {
    pub category: usize,
    pub weight: u32,
    pub median: f64,
    pub sigma: f64,
}

const fn b(category: usize, weight: u32, median: f64, sigma: f64) -> Basket {
    Basket {
        category,
        weight,
        median,
        sigma,
    }
}

/// A persona's habits.
#[derive(Debug)]
pub struct Spec {
    /// Share of the population.
    pub share: u32,
    pub tx_per_day: f64,
    /// Saturday and Sunday rate relative to a weekday.
    pub weekend: f64,
    pub basket: &'static [Basket],
    /// Weekday local hours, relative weights.
    pub hours: [u32; 24],
    /// Weekend local hours, relative weights.
    pub weekend_hours: [u32; 24],
    /// credit card, debit card, digital wallet.
    pub payments: [u32; 3],
    /// Chance a transaction is a cash withdrawal instead.
    pub withdrawals: f64,
    /// Chance of a trip in a week.
    pub travel: f64,
    /// Works (or studies) away from home on weekdays.
    pub commutes: bool,
}

const YOUNG_PROFESSIONAL: Spec = Spec {
    share: 30,
    tx_per_day: 3.4,
    weekend: 1.1,
    basket: &[
        b(0, 26, 5.5, 0.25),
        b(1, 14, 32.0, 0.4),
        b(2, 13, 55.0, 0.6),
        b(3, 13, 19.0, 0.4),
        b(4, 12, 48.0, 0.45),
        b(11, 6, 30.0, 0.5),
        b(12, 5, 85.0, 0.5),
        b(16, 3, 14.0, 0.2),
        b(7, 3, 22.0, 0.5),
        b(14, 2, 90.0, 0.3),
    ],
    hours: [
        0, 0, 0, 0, 0, 0, 2, 10, 12, 6, 3, 4, 11, 8, 3, 3, 3, 5, 9, 9, 8, 6, 3, 1,
    ],
    weekend_hours: [
        1, 0, 0, 0, 0, 0, 0, 1, 3, 6, 8, 9, 9, 8, 6, 6, 5, 6, 8, 9, 8, 6, 4, 2,
    ],
    payments: [45, 15, 40],
    withdrawals: 0.02,
    travel: 0.12,
    commutes: true,
};

const FAMILY: Spec = Spec {
    share: 30,
    tx_per_day: 2.8,
    weekend: 1.4,
    basket: &[
        b(4, 30, 115.0, 0.45),
        b(5, 17, 52.0, 0.3),
        b(6, 14, 68.0, 0.4),
        b(7, 8, 32.0, 0.5),
        b(12, 7, 75.0, 0.5),
        b(2, 10, 65.0, 0.6),
        b(13, 5, 105.0, 0.6),
        b(14, 3, 140.0, 0.3),
        b(11, 3, 55.0, 0.4),
        b(0, 3, 6.0, 0.3),
    ],
    hours: [
        0, 0, 0, 0, 0, 0, 1, 5, 8, 5, 4, 5, 8, 6, 4, 5, 8, 10, 10, 7, 4, 2, 1, 0,
    ],
    weekend_hours: [
        0, 0, 0, 0, 0, 0, 0, 2, 5, 8, 10, 10, 10, 9, 8, 7, 6, 7, 8, 6, 3, 1, 0, 0,
    ],
    payments: [40, 50, 10],
    withdrawals: 0.04,
    travel: 0.08,
    commutes: true,
};

const SENIOR: Spec = Spec {
    share: 20,
    tx_per_day: 1.6,
    weekend: 0.9,
    basket: &[
        b(4, 30, 58.0, 0.3),
        b(7, 20, 38.0, 0.3),
        b(8, 10, 110.0, 0.35),
        b(9, 18, 27.0, 0.3),
        b(1, 10, 34.0, 0.3),
        b(14, 5, 95.0, 0.2),
        b(5, 5, 42.0, 0.25),
        b(15, 2, 24.0, 0.3),
    ],
    hours: [
        0, 0, 0, 0, 0, 0, 0, 1, 5, 10, 12, 12, 10, 8, 9, 8, 6, 4, 2, 1, 0, 0, 0, 0,
    ],
    weekend_hours: [
        0, 0, 0, 0, 0, 0, 0, 1, 4, 8, 10, 12, 10, 8, 8, 6, 4, 2, 1, 0, 0, 0, 0, 0,
    ],
    payments: [40, 60, 0],
    withdrawals: 0.06,
    travel: 0.05,
    commutes: false,
};

const STUDENT: Spec = Spec {
    share: 20,
    tx_per_day: 2.7,
    weekend: 1.2,
    basket: &[
        b(10, 26, 21.0, 0.35),
        b(11, 15, 16.0, 0.45),
        b(0, 15, 4.8, 0.25),
        b(2, 11, 28.0, 0.6),
        b(4, 13, 27.0, 0.45),
        b(3, 10, 13.0, 0.4),
        b(15, 5, 35.0, 0.4),
        b(16, 5, 10.0, 0.2),
    ],
    hours: [
        3, 2, 1, 0, 0, 0, 0, 0, 2, 4, 6, 7, 9, 8, 6, 5, 5, 6, 8, 9, 9, 8, 6, 4,
    ],
    weekend_hours: [
        5, 4, 2, 1, 0, 0, 0, 0, 0, 1, 3, 6, 8, 8, 7, 6, 6, 7, 8, 9, 9, 8, 7, 6,
    ],
    payments: [10, 60, 30],
    withdrawals: 0.03,
    travel: 0.06,
    commutes: true,
};

impl Spec {
    /// Whether `category` is in this persona's basket.
    pub fn buys(&self, category: usize) -> bool {
        self.basket.iter().any(|b| b.category == category)
    }

    /// The typical (weighted median) amount, for sizing fraud.
    pub fn typical_amount(&self) -> f64 {
        let total: u32 = self.basket.iter().map(|b| b.weight).sum();
        let sum: f64 = self
            .basket
            .iter()
            .map(|b| f64::from(b.weight) * b.median)
            .sum();
        sum / f64::from(total.max(1))
    }
}
