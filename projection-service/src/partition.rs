//! Partitions: which events an instance started with `--partition i/n`
//! projects. Customer streams split by a stable hash of the customer id;
//! everything else (alert lifecycles, labels, quarantine, rulesets) belongs
//! to partition 0, so it is projected exactly once.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// The whole log.
    pub const ALL: Partition = Partition { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Partition, String> {
        if count == 0 || index >= count {
            return Err(format!("partition {index}/{count}: need 0 <= i < n"));
        }
        Ok(Partition { index, count })
    }

    pub fn is_whole_log(self) -> bool {
        self.count == 1
    }

    /// This partition cut into `k` (one process running `k` runners, one
    /// per core): `j*n + i` of `n*k` for `j < k`. A customer whose hash is
    /// `j*n + i` modulo `n*k` has hash `i` modulo `n`, so the pieces own
    /// exactly what this partition owns, each customer once; streams that
    /// are not a customer's go to the piece with index 0 only if this is
    /// partition 0 (as they would whole).
    pub fn split(self, k: u32) -> Vec<Partition> {
        let k = k.max(1);
        (0..k)
            .map(|j| Partition {
                index: j * self.count + self.index,
                count: self.count * k,
            })
            .collect()
    }

    /// Whether this partition projects events of `stream_id`.
    pub fn owns(self, stream_id: &str) -> bool {
        if self.count == 1 {
            return true;
        }
        match stream_id.strip_prefix("customer-") {
            Some(customer) => {
                (fnv1a(customer.as_bytes()) % u64::from(self.count)) as u32 == self.index
            }
            None => self.index == 0,
        }
    }
}

/// FNV-1a, 64-bit: stable across processes, versions and platforms (the
/// standard library's hasher is not), which a partition map must be.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

impl FromStr for Partition {
    type Err = String;
    fn from_str(text: &str) -> Result<Partition, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("partition {text:?}: expected i/n, e.g. 0/4"))?;
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("partition {text:?}: {s:?} is not a number"))
        };
        Partition::new(parse(i)?, parse(n)?)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_customer_stream_has_exactly_one_owner() {
        for n in 1..=5 {
            for c in 0..200 {
                let stream = format!("customer-c{c}");
                let owners = (0..n)
                    .filter(|i| Partition::new(*i, n).is_ok_and(|p| p.owns(&stream)))
                    .count();
                assert_eq!(owners, 1, "{stream} with {n} partitions");
            }
        }
    }

    #[test]
    fn other_streams_belong_to_partition_zero() {
        let p0 = Partition::new(0, 3).unwrap();
        let p1 = Partition::new(1, 3).unwrap();
        for stream in ["alert-1", "label-tx", "quarantine", "ruleset"] {
            assert!(p0.owns(stream));
            assert!(!p1.owns(stream));
        }
    }

    #[test]
    fn split_pieces_own_exactly_what_the_whole_owns() {
        let streams: Vec<String> = (0..300)
            .map(|c| format!("customer-c{c}"))
            .chain(["alert-1", "quarantine", "policy"].map(String::from))
            .collect();
        for n in 1..=3 {
            for i in 0..n {
                let whole = Partition::new(i, n).unwrap();
                for k in 1..=4 {
                    let pieces = whole.split(k);
                    assert_eq!(pieces.len(), k as usize);
                    for stream in &streams {
                        let owners = pieces.iter().filter(|p| p.owns(stream)).count();
                        let expected = usize::from(whole.owns(stream));
                        assert_eq!(owners, expected, "{stream}: {whole} split in {k}");
                    }
                }
            }
        }
        assert_eq!(Partition::ALL.split(1), vec![Partition::ALL]);
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            "1/4".parse::<Partition>(),
            Ok(Partition { index: 1, count: 4 })
        );
        assert!("4/4".parse::<Partition>().is_err());
        assert!("0/0".parse::<Partition>().is_err());
        assert!("x".parse::<Partition>().is_err());
    }

    #[test]
    fn the_hash_is_stable() {
        // Changing it would move customers between partitions whose
        // checkpoints say otherwise.
        assert_eq!(fnv1a(b"c1"), 0x08a2_7f07_b54a_6859);
    }
}
