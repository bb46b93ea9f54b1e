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

/// How many transactions fell in each UTC hour of the day. UTC because it is
/// the same clock for every transaction of a customer; a client's offset is
/// not a reliable local time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourHistogram([u32; 24]);

impl HourHistogram {
    pub fn hour_of(at: DateTime<Utc>) -> usize {
        at.hour() as usize
    }

    pub fn push(&mut self, at: DateTime<Utc>) {
        let bucket = &mut self.0[Self::hour_of(at) % 24];
        *bucket = bucket.saturating_add(1);
    }

    pub fn count_at(&self, hour: usize) -> u32 {
        self.0.get(hour).copied().unwrap_or(0)
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
    fn a_single_value_has_no_spread() {
        let mut s = RunningStats::default();
        s.push(5.0);
        assert_eq!(s.std_dev(), 0.0);
    }
}
