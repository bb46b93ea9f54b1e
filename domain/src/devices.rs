//! The devices a customer has transacted from, bounded: a device is the
//! pair (user agent, IP address) a web or app transaction names, kept as a
//! 64-bit fingerprint with when it was first and last seen and how often.
//!
//! Fingerprints, not the strings: the state stays a few dozen bytes per
//! device, and personal fields (IP, user agent) never reach the domain in
//! the clear on today's path: the command side seals them and records a
//! keyed fingerprint instead (docs/trust.md, ADR 0021). The FNV-1a of the
//! plaintext remains for transactions recorded before that (stable across
//! builds and platforms, which std's hasher is not promised to be);
//! collisions between one customer's handful of devices are negligible.
//!
//! At most `capacity` devices are kept; the one seen least recently goes
//! first, so a customer's everyday phone and laptop are never forgotten
//! while a one-off (a hotel PC) is.

use crate::transaction::Transaction;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A device's fingerprint. Recorded transactions carry a keyed one
/// (HMAC-SHA-256 under the customer's data key, cut to 64 bits, computed
/// by the command side when it seals the personal fields: ADR 0021);
/// transactions recorded before that carry the IP and user agent in the
/// clear and are fingerprinted here with FNV-1a, as they always were, so
/// old logs replay to the same decisions. Serialised as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceKey(u64);

impl DeviceKey {
    /// A fingerprint computed elsewhere (the keyed one).
    pub fn from_u64(value: u64) -> DeviceKey {
        DeviceKey(value)
    }

    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The device `tx` was made from, if it names one (terminal and schema
    /// v1 transactions do not): its recorded keyed fingerprint, else the
    /// FNV-1a of its plaintext fields (transactions from before sealing).
    pub fn of(tx: &Transaction) -> Option<DeviceKey> {
        let device = tx.device_info.as_ref()?;
        if let Some(key) = device.fingerprint {
            return Some(key);
        }
        let identity = device.identity()?;
        let mut h = Fnv::default();
        h.write(&identity);
        Some(DeviceKey(h.0))
    }
}

impl Serialize for DeviceKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for DeviceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DeviceKey, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text.len() != 16 {
            return Err(serde::de::Error::custom(
                "a device fingerprint is 16 hex digits",
            ));
        }
        u64::from_str_radix(&text, 16)
            .map(DeviceKey)
            .map_err(|_| serde::de::Error::custom("a device fingerprint is 16 hex digits"))
    }
}

/// FNV-1a, 64 bit.
pub(crate) struct Fnv(pub(crate) u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// What is known of one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSeen {
    pub key: DeviceKey,
    /// Event time of its earliest transaction.
    pub first_seen: DateTime<Utc>,
    /// Event time of its newest transaction.
    pub last_seen: DateTime<Utc>,
    pub uses: u32,
}

/// A customer's known devices, at most `capacity` of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownDevices {
    devices: Vec<DeviceSeen>,
}

impl KnownDevices {
    pub fn get(&self, key: DeviceKey) -> Option<&DeviceSeen> {
        self.devices.iter().find(|d| d.key == key)
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Records a use at `at` (event time, so a late transaction can move
    /// `first_seen` back); forgets the least recently seen device when full.
    pub fn record(&mut self, key: DeviceKey, at: DateTime<Utc>, capacity: usize) {
        if let Some(d) = self.devices.iter_mut().find(|d| d.key == key) {
            d.first_seen = d.first_seen.min(at);
            d.last_seen = d.last_seen.max(at);
            d.uses = d.uses.saturating_add(1);
            return;
        }
        if capacity == 0 {
            return;
        }
        while self.devices.len() >= capacity {
            // Linear scan: a handful of entries.
            let stalest = self
                .devices
                .iter()
                .enumerate()
                .min_by_key(|(_, d)| d.last_seen)
                .map(|(i, _)| i);
            match stalest {
                Some(i) => {
                    self.devices.swap_remove(i);
                }
                None => break,
            }
        }
        self.devices.push(DeviceSeen {
            key,
            first_seen: at,
            last_seen: at,
            uses: 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minute)
    }

    #[test]
    fn counts_uses_and_keeps_the_earliest_and_newest_times() {
        let mut d = KnownDevices::default();
        d.record(DeviceKey(1), at(10), 8);
        d.record(DeviceKey(1), at(5), 8);
        d.record(DeviceKey(1), at(20), 8);
        let seen = d.get(DeviceKey(1)).unwrap();
        assert_eq!(
            (seen.first_seen, seen.last_seen, seen.uses),
            (at(5), at(20), 3)
        );
    }

    #[test]
    fn forgets_the_least_recently_seen_when_full() {
        let mut d = KnownDevices::default();
        d.record(DeviceKey(1), at(1), 2);
        d.record(DeviceKey(2), at(2), 2);
        d.record(DeviceKey(1), at(3), 2);
        d.record(DeviceKey(3), at(4), 2);
        assert_eq!(d.len(), 2);
        assert!(d.get(DeviceKey(2)).is_none());
        assert!(d.get(DeviceKey(1)).is_some() && d.get(DeviceKey(3)).is_some());
    }

    #[test]
    fn fnv_is_the_published_function() {
        // FNV-1a 64 of "a" (the reference test vector).
        let mut h = Fnv::default();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }
}
