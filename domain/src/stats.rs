//! Customer profile statistics that never forget and never grow: a running
//! mean and variance of amounts (Welford) and a 24-bucket hour-of-day
//! histogram. Both are order-independent counts, so a late transaction
//! updates them exactly as an on-time one would.

use chrono::{DateTime, Timelike, Utc};

/// Welford's online mean and variance: numerically stable, O(1) per update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunningStats {
    count: u64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
}

impl RunningStats {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample standard deviation (n - 1); 0 with fewer than two values.
    pub fn std_dev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2.max(0.0) / (self.count - 1) as f64).sqrt()
        }
    }
}

/// How many transactions fell in each hour of the day: UTC (the same clock
/// for every transaction of a customer; a client's offset is not a reliable
/// local time) or local solar time from a longitude ([`Self::solar_hour_of`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourHistogram([u32; 24]);

impl HourHistogram {
    pub fn hour_of(at: DateTime<Utc>) -> usize {
        at.hour() as usize
    }

    /// The local solar hour at longitude `lon` (degrees east): UTC shifted
    /// by 4 minutes a degree, so noon is when the sun is highest there.
    pub fn solar_hour_of(at: DateTime<Utc>, lon: f64) -> usize {
        let utc_secs = f64::from(at.num_seconds_from_midnight());
        let local = (utc_secs + lon * 240.0).rem_euclid(86_400.0);
        ((local / 3600.0) as usize).min(23)
    }

    pub fn push(&mut self, at: DateTime<Utc>) {
        self.push_hour(Self::hour_of(at));
    }

    /// Counts one transaction at `hour` (0..24; larger values wrap).
    pub fn push_hour(&mut self, hour: usize) {
        let bucket = &mut self.0[hour % 24];
        *bucket = bucket.saturating_add(1);
    }

    pub fn count_at(&self, hour: usize) -> u32 {
        self.0.get(hour).copied().unwrap_or(0)
    }

    /// Transactions in the hours `from <= h < to`, wrapping past midnight
    /// when `from > to` (22 to 5 is 22:00-04:59); `from == to` is no hour.
    pub fn count_between(&self, from: usize, to: usize) -> u32 {
        (0..24)
            .filter(|&h| in_band(h, from, to))
            .map(|h| self.0[h])
            .fold(0u32, u32::saturating_add)
    }
}

/// Whether `hour` is in `from <= hour < to`, wrapping past midnight.
pub fn in_band(hour: usize, from: usize, to: usize) -> bool {
    if from <= to {
        from <= hour && hour < to
    } else {
        hour >= from || hour < to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_the_two_pass_formula() {
        let xs = [10.0, 12.0, 23.0, 23.0, 16.0, 23.0, 21.0, 16.0];
        let mut s = RunningStats::default();
        xs.iter().for_each(|&x| s.push(x));
        let mean = xs.iter().sum::<f64>() / 8.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 7.0;
        assert!((s.mean() - mean).abs() < 1e-12);
        assert!((s.std_dev() - var.sqrt()).abs() < 1e-12);
        assert_eq!(s.count(), 8);
    }

    #[test]
    fn solar_hours_follow_the_longitude_and_bands_wrap() {
        let at = DateTime::parse_from_rfc3339("2026-01-05T12:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(HourHistogram::solar_hour_of(at, 0.0), 12);
        assert_eq!(HourHistogram::solar_hour_of(at, -75.0), 7);
        assert_eq!(HourHistogram::solar_hour_of(at, 150.0), 22);
        assert_eq!(HourHistogram::solar_hour_of(at, -180.0), 0);
        let mut h = HourHistogram::default();
        for hour in [23, 0, 4, 5, 12] {
            h.push_hour(hour);
        }
        assert_eq!(h.count_between(1, 5), 1);
        assert_eq!(h.count_between(23, 5), 3);
        assert_eq!(h.count_between(5, 5), 0);
    }

    #[test]
    fn a_single_value_has_no_spread() {
        let mut s = RunningStats::default();
        s.push(5.0);
        assert_eq!(s.std_dev(), 0.0);
    }
}
