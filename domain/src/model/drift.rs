//! Drift: how far what the model sees now has moved from what it was
//! trained on. Training records, per feature and for the score, the edges
//! of ten quantile bins over the training rows and each bin's share (plus
//! one bin for unknown values); the command side counts live values into
//! the same bins and reports the population stability index
//! `PSI = Σ (live - train) · ln(live / train)` over the bins. Rules of
//! thumb: under 0.1 stable, 0.1-0.25 moving, over 0.25 shifted.

use serde::{Deserialize, Serialize};

/// Quantile bins of one quantity, with the training shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bins {
    /// Interior edges, ascending: bin k holds values in [edge k-1, edge k).
    pub edges: Vec<f64>,
    /// Share of training values per bin: `shares[0]` unknown (NaN), then
    /// one per interval (`edges.len() + 1` of them).
    pub shares: Vec<f64>,
}

impl Bins {
    /// Up to `bins` quantile bins over `values` (equal values share a bin,
    /// so a flag gets two).
    pub fn fit(values: &[f64], bins: usize) -> Bins {
        let mut known: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        known.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::new();
        if !known.is_empty() {
            for k in 1..bins.max(1) {
                let edge = known[(k * known.len() / bins).min(known.len() - 1)];
                if edge > known[0] && edges.last().is_none_or(|&last| edge > last) {
                    edges.push(edge);
                }
            }
        }
        let mut b = Bins {
            shares: vec![0.0; edges.len() + 2],
            edges,
        };
        let mut counts = vec![0u64; b.shares.len()];
        for &v in values {
            counts[b.bin(v)] += 1;
        }
        b.shares = shares(&counts);
        b
    }

    /// The bin a value falls in.
    pub fn bin(&self, value: f64) -> usize {
        if value.is_nan() {
            0
        } else {
            1 + self.edges.partition_point(|&e| e <= value)
        }
    }

    /// The PSI of observed counts per bin against the training shares;
    /// `None` without observations.
    pub fn psi(&self, counts: &[u64]) -> Option<f64> {
        if counts.len() != self.shares.len() || counts.iter().sum::<u64>() == 0 {
            return None;
        }
        // Empty bins would make the log infinite: a small floor, as usual.
        let floor = 1e-4;
        let live = shares(counts);
        Some(
            live.iter()
                .zip(&self.shares)
                .map(|(&l, &t)| {
                    let (l, t) = (l.max(floor), t.max(floor));
                    (l - t) * (l / t).ln()
                })
                .sum(),
        )
    }
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// What training saw: the model's columns' bins and the score's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// One per model column, in column order.
    pub features: Vec<Bins>,
    /// The model's probability on the validation slice.
    pub score: Bins,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_distribution_is_stable_and_a_shift_is_not() {
        let train: Vec<f64> = (0..1000).map(f64::from).collect();
        let bins = Bins::fit(&train, 10);
        assert_eq!(bins.edges.len(), 9);
        let count = |values: &[f64]| {
            let mut c = vec![0u64; bins.shares.len()];
            for &v in values {
                c[bins.bin(v)] += 1;
            }
            c
        };
        let same = bins.psi(&count(&train)).unwrap_or(f64::NAN);
        assert!(same.abs() < 1e-9, "{same}");
        let shifted: Vec<f64> = (500..1500).map(f64::from).collect();
        let psi = bins.psi(&count(&shifted)).unwrap_or(0.0);
        assert!(psi > 0.25, "{psi}");
        assert_eq!(bins.psi(&vec![0; bins.shares.len()]), None);
    }

    #[test]
    fn flags_and_unknowns_get_their_own_bins() {
        let values = [0.0, 0.0, 1.0, f64::NAN];
        let bins = Bins::fit(&values, 10);
        assert_eq!(bins.edges, vec![1.0]);
        assert_eq!(bins.bin(f64::NAN), 0);
        assert_eq!(bins.bin(0.0), 1);
        assert_eq!(bins.bin(1.0), 2);
        assert_eq!(bins.shares, vec![0.25, 0.5, 0.25]);
    }
}
