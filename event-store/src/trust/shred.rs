//! Crypto-shredding's cryptography (docs/trust.md, ADR 0021), with no SQL:
//! the master key's [`KeySpec`], data keys and how they are wrapped by the
//! master key, sealing and opening personal fields under a customer's data
//! key, and the keyed device fingerprint.
//!
//! - Cipher: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`). Its 192-bit
//!   nonces are drawn at random per message with no bookkeeping and no
//!   realistic chance of a repeat, and it is fast without AES hardware.
//!   Nonces come from the thread's CSPRNG (`rand::rng()`: ChaCha12 seeded
//!   and reseeded from the operating system), not a system call per
//!   message (one per sealed transaction showed in the ingest's profile);
//!   keys come straight from the operating system.
//! - Every ciphertext is bound to the customer (and its purpose) through
//!   the associated data, so a ciphertext copied into another customer's
//!   event, or a wrapped key moved to another row, does not open.
//! - Fingerprint: HMAC-SHA-256 under the data key over the device's identity
//!   bytes (`domain::transaction::DeviceInfo::identity`), cut to 64 bits.
//!   Without the key it cannot be recomputed from a guessed IP, so once the
//!   key is destroyed it links to nothing.
//!
//! The key ring that stores and caches data keys is
//! `crate::postgres::keys`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use settings::keys::{KeySpec, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The master key: wraps every customer's data key. `SENTINEL_MASTER_KEY`
/// (64 hex digits), `SENTINEL_MASTER_KEY_FILE`, or a development key
/// generated into `.sentinel/keys/master.key` with a warning.
pub const MASTER_KEY: KeySpec = KeySpec {
    purpose: "master encryption key",
    var: "SENTINEL_MASTER_KEY",
    file_name: "master.key",
};

/// The master key being rotated out: while it is set, data keys it
/// wrapped still unwrap, and `fraudctl keys rewrap` re-wraps them under
/// [`MASTER_KEY`] (docs/trust.md, "Rotating the master key"). Never
/// generated.
pub const PREVIOUS_MASTER_KEY: KeySpec = KeySpec {
    purpose: "previous master encryption key",
    var: "SENTINEL_PREVIOUS_MASTER_KEY",
    file_name: "previous-master.key",
};

/// Which sealed-text format this is: `v1.<generation>.<base64 nonce||ct>`.
const SEALED_PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why something did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShredError {
    #[error("not a sealed value")]
    Malformed,
    #[error("the ciphertext does not open with this key")]
    WrongKey,
    #[error("the operating system gave no randomness")]
    NoRandomness,
}

/// 32 random bytes that seal one customer's personal fields; wiped from
/// memory on drop.
pub struct DataKey {
    bytes: Zeroizing<[u8; 32]>,
    /// Which of the customer's keys this is (1 for the first; a new one
    /// after each erasure).
    pub generation: u32,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey(<redacted>, generation {})", self.generation)
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate(generation: u32) -> Result<DataKey, ShredError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| ShredError::NoRandomness)?;
        Ok(DataKey { bytes, generation })
    }

    /// A key from its bytes (tests; unwrapping).
    pub fn from_bytes(bytes: [u8; 32], generation: u32) -> DataKey {
        DataKey {
            bytes: Zeroizing::new(bytes),
            generation,
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(*self.bytes))
    }

    /// Encrypts `plaintext` for `customer`: `v1.<generation>.<base64>`.
    pub fn seal(&self, customer: &str, plaintext: &[u8]) -> Result<String, ShredError> {
        let aad = associated("sentinel/personal/v1", customer);
        let sealed = encrypt(&self.cipher(), &aad, plaintext)?;
        Ok(format!(
            "{SEALED_PREFIX}{}.{}",
            self.generation,
            B64.encode(sealed)
        ))
    }

    /// Decrypts what [`DataKey::seal`] wrote for `customer`.
    pub fn open(&self, customer: &str, sealed: &str) -> Result<Vec<u8>, ShredError> {
        let (generation, bytes) = parse_sealed(sealed)?;
        if generation != self.generation {
            return Err(ShredError::WrongKey);
        }
        let aad = associated("sentinel/personal/v1", customer);
        decrypt(&self.cipher(), &aad, &bytes)
    }

    /// The device fingerprint: HMAC-SHA-256(key, tag || identity), the
    /// first 8 bytes as a big-endian u64.
    pub fn fingerprint(&self, identity: &[u8]) -> u64 {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.bytes.as_slice())
            .expect("HMAC accepts any key length");
        mac.update(b"sentinel/device/v1\0");
        mac.update(identity);
        let out = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&out[..8]);
        u64::from_be_bytes(first)
    }
}

/// The generation a sealed text was written under, without opening it.
pub fn sealed_generation(sealed: &str) -> Option<u32> {
    parse_sealed(sealed).ok().map(|(g, _)| g)
}

/// The master key, loaded by `settings::keys`: wraps and unwraps data keys.
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
    /// Hex of the first 8 bytes of SHA-256 of the key: stored beside each
    /// wrapped key, so a start with the wrong master key is told so.
    pub key_id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(<redacted>, id {})", self.key_id)
    }
}

impl MasterKey {
    pub fn new(secret: &SecretKey) -> MasterKey {
        Self::from_bytes(secret.bytes())
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> MasterKey {
        let digest = Sha256::new()
            .chain_update(b"sentinel/master-key-id/v1\0")
            .chain_update(bytes)
            .finalize();
        MasterKey {
            cipher: XChaCha20Poly1305::new(&Key::from(*bytes)),
            key_id: settings::keys::to_hex(&digest[..8]),
        }
    }

    /// A random master key that lives only in this process (tests).
    pub fn ephemeral() -> Result<MasterKey, ShredError> {
        let key = DataKey::generate(0)?;
        Ok(Self::from_bytes(&key.bytes))
    }

    /// `nonce || ciphertext || tag` of the data key, bound to `customer`.
    pub fn wrap(&self, customer: &str, key: &DataKey) -> Result<Vec<u8>, ShredError> {
        let aad = associated("sentinel/data-key/v1", customer);
        encrypt(&self.cipher, &aad, key.bytes.as_slice())
    }

    /// The data key of `customer` from its wrapped form.
    pub fn unwrap(
        &self,
        customer: &str,
        wrapped: &[u8],
        generation: u32,
    ) -> Result<DataKey, ShredError> {
        let aad = associated("sentinel/data-key/v1", customer);
        let plain = Zeroizing::new(decrypt(&self.cipher, &aad, wrapped)?);
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| ShredError::Malformed)?;
        Ok(DataKey::from_bytes(bytes, generation))
    }
}

fn associated(purpose: &str, customer: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(purpose.len() + 1 + customer.len());
    aad.extend_from_slice(purpose.as_bytes());
    aad.push(0);
    aad.extend_from_slice(customer.as_bytes());
    aad
}

fn encrypt(cipher: &XChaCha20Poly1305, aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, ShredError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let ct = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg, aad })
        .map_err(|_| ShredError::Malformed)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn decrypt(cipher: &XChaCha20Poly1305, aad: &[u8], bytes: &[u8]) -> Result<Vec<u8>, ShredError> {
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(ShredError::Malformed);
    }
    let (nonce, ct) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| ShredError::Malformed)?;
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
        .map_err(|_| ShredError::WrongKey)
}

fn parse_sealed(sealed: &str) -> Result<(u32, Vec<u8>), ShredError> {
    let rest = sealed
        .strip_prefix(SEALED_PREFIX)
        .ok_or(ShredError::Malformed)?;
    let (generation, body) = rest.split_once('.').ok_or(ShredError::Malformed)?;
    let generation = generation.parse().map_err(|_| ShredError::Malformed)?;
    let bytes = B64.decode(body).map_err(|_| ShredError::Malformed)?;
    Ok((generation, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_fields_open_only_with_their_key_and_customer() {
        let key = DataKey::generate(1).unwrap();
        let sealed = key
            .seal("c-1", b"{\"ip_address\":\"203.0.113.7\"}")
            .unwrap();
        assert!(sealed.starts_with("v1.1."), "{sealed}");
        assert!(!sealed.contains("203.0.113.7"));
        assert_eq!(
            key.open("c-1", &sealed).unwrap(),
            b"{\"ip_address\":\"203.0.113.7\"}"
        );
        // Random nonces: the same plaintext seals differently each time.
        assert_ne!(
            sealed,
            key.seal("c-1", b"{\"ip_address\":\"203.0.113.7\"}")
                .unwrap()
        );
        assert_eq!(key.open("c-2", &sealed), Err(ShredError::WrongKey));
        let other = DataKey::generate(1).unwrap();
        assert_eq!(other.open("c-1", &sealed), Err(ShredError::WrongKey));
        assert_eq!(sealed_generation(&sealed), Some(1));
        assert_eq!(key.open("c-1", "v1.1.!!"), Err(ShredError::Malformed));
    }

    #[test]
    fn data_keys_wrap_and_unwrap_under_the_master_key_only() {
        let master = MasterKey::from_bytes(&[7; 32]);
        let key = DataKey::generate(3).unwrap();
        let wrapped = master.wrap("c-1", &key).unwrap();
        assert_eq!(wrapped.len(), 24 + 32 + 16);
        let back = master.unwrap("c-1", &wrapped, 3).unwrap();
        assert_eq!(back.bytes.as_slice(), key.bytes.as_slice());
        assert!(master.unwrap("c-2", &wrapped, 3).is_err());
        assert!(
            MasterKey::from_bytes(&[8; 32])
                .unwrap("c-1", &wrapped, 3)
                .is_err()
        );
        assert_ne!(MasterKey::from_bytes(&[8; 32]).key_id, master.key_id);
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        let key = DataKey::from_bytes([1; 32], 1);
        let a = key.fingerprint(b"Mozilla/5.0\x00203.0.113.7");
        assert_eq!(a, key.fingerprint(b"Mozilla/5.0\x00203.0.113.7"));
        assert_ne!(a, key.fingerprint(b"Mozilla/5.0\x00203.0.113.8"));
        assert_ne!(
            a,
            DataKey::from_bytes([2; 32], 1).fingerprint(b"Mozilla/5.0\x00203.0.113.7")
        );
    }
}
