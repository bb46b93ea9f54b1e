//! Signed checkpoints: "the log's chain hash at position P was H at time T",
//! signed with Ed25519. A verifier holding only the public key can then
//! tell a rewritten history (the chain no longer reaches H at P) and a
//! forged seal (the signature does not verify) from the real thing.
//!
//! The signed message is `"sentinel/checkpoint/v1" 0x00, position (u64),
//! chain hash (32 bytes), signed at (i64 microseconds since the Unix
//! epoch), key id length (u32) and key id`, all big-endian.

use super::chain::Hash;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::time::Duration;

const MESSAGE_TAG: &[u8] = b"sentinel/checkpoint/v1\0";

/// Where the signing key is configured (`settings::keys`):
/// `SENTINEL_SIGNING_KEY` (64 hex digits: the Ed25519 secret seed),
/// `SENTINEL_SIGNING_KEY_FILE`, or `.sentinel/keys/signing.key`.
pub const SIGNING_KEY: settings::keys::KeySpec = settings::keys::KeySpec {
    purpose: "checkpoint signing key",
    var: "SENTINEL_SIGNING_KEY",
    file_name: "signing.key",
};

/// One recorded checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last event it covers.
    pub position: u64,
    /// That event's hash: the chain up to and including it.
    pub chain_hash: Hash,
    /// When it was signed (whole microseconds).
    pub signed_at: DateTime<Utc>,
    /// [`key_id`] of the public key.
    pub key_id: String,
    /// The signer's public key, recorded for convenience: a verifier trusts
    /// the keys it is given, not the ones the log names.
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

/// Why a checkpoint's signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("signed by key {0}, which is not among the trusted public keys")]
    UntrustedKey(String),
    #[error("its key id {recorded} does not belong to its public key (id {actual})")]
    KeyIdMismatch { recorded: String, actual: String },
    #[error("its public key is not a valid Ed25519 key")]
    BadPublicKey,
    #[error("the signature does not verify")]
    BadSignature,
}

impl Checkpoint {
    fn message(&self) -> Vec<u8> {
        message(
            self.position,
            &self.chain_hash,
            self.signed_at.timestamp_micros(),
            &self.key_id,
        )
    }

    /// Checks the signature against `trusted` public keys; with none given,
    /// against the key the checkpoint names (which proves only that the
    /// checkpoint is intact, not who made it).
    pub fn verify(&self, trusted: &[VerifyingKey]) -> Result<(), SignatureProblem> {
        let actual = key_id(&self.public_key);
        if actual != self.key_id {
            return Err(SignatureProblem::KeyIdMismatch {
                recorded: self.key_id.clone(),
                actual,
            });
        }
        let key = if trusted.is_empty() {
            VerifyingKey::from_bytes(&self.public_key)
                .map_err(|_| SignatureProblem::BadPublicKey)?
        } else {
            *trusted
                .iter()
                .find(|k| k.as_bytes() == &self.public_key)
                .ok_or_else(|| SignatureProblem::UntrustedKey(self.key_id.clone()))?
        };
        key.verify_strict(&self.message(), &Signature::from_bytes(&self.signature))
            .map_err(|_| SignatureProblem::BadSignature)
    }
}

fn message(position: u64, chain_hash: &Hash, signed_at_micros: i64, key_id: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(MESSAGE_TAG.len() + 8 + 32 + 8 + 4 + key_id.len());
    m.extend_from_slice(MESSAGE_TAG);
    m.extend_from_slice(&position.to_be_bytes());
    m.extend_from_slice(chain_hash);
    m.extend_from_slice(&signed_at_micros.to_be_bytes());
    m.extend_from_slice(&(key_id.len() as u32).to_be_bytes());
    m.extend_from_slice(key_id.as_bytes());
    m
}

/// A public key's short name: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    settings::keys::to_hex(&digest[..8])
}

/// Signs checkpoints with one Ed25519 key.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(key id {})", self.key_id)
    }
}

impl Signer {
    /// From the 32-byte Ed25519 secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(key.verifying_key().as_bytes());
        Signer { key, key_id }
    }

    /// The configured signing key (`SENTINEL_SIGNING_KEY`, `..._FILE`), or
    /// the development key, generated and warned about if there is none.
    pub fn load_or_generate() -> anyhow::Result<Signer> {
        let secret = settings::keys::load_or_generate(&SIGNING_KEY)?;
        Ok(Signer::from_seed(secret.bytes()))
    }

    /// The configured or development signing key, if there is one (never generates).
    pub fn load() -> anyhow::Result<Option<Signer>> {
        Ok(settings::keys::load(&SIGNING_KEY)?.map(|s| Signer::from_seed(s.bytes())))
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key in hex, as published.
    pub fn public_key_hex(&self) -> String {
        settings::keys::to_hex(self.key.verifying_key().as_bytes())
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn sign(&self, position: u64, chain_hash: Hash, signed_at: DateTime<Utc>) -> Checkpoint {
        let signed_at = super::chain::to_micros(signed_at);
        let signature = self.key.sign(&message(
            position,
            &chain_hash,
            signed_at.timestamp_micros(),
            &self.key_id,
        ));
        Checkpoint {
            position,
            chain_hash,
            signed_at,
            key_id: self.key_id.clone(),
            public_key: *self.key.verifying_key().as_bytes(),
            signature: signature.to_bytes(),
        }
    }
}

/// Parses a public key given as 64 hex digits.
pub fn parse_public_key(hex: &str) -> anyhow::Result<VerifyingKey> {
    let bytes: [u8; 32] = settings::keys::from_hex(hex)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("an Ed25519 public key is 32 bytes (64 hex digits)"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| anyhow::anyhow!("not a valid Ed25519 public key"))
}

/// When the writer seals the log: after `every_events` positions or
/// `every` time since the last checkpoint, whichever comes first.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    pub signer: std::sync::Arc<Signer>,
    pub every_events: u64,
    pub every: Duration,
}

/// Default cadence: every 10,000 events or 10 seconds.
pub const DEFAULT_EVERY_EVENTS: u64 = 10_000;
pub const DEFAULT_EVERY: Duration = Duration::from_secs(10);

impl CheckpointPolicy {
    pub fn new(signer: Signer) -> CheckpointPolicy {
        CheckpointPolicy {
            signer: std::sync::Arc::new(signer),
            every_events: DEFAULT_EVERY_EVENTS,
            every: DEFAULT_EVERY,
        }
    }

    /// What a service runs with: the signing key from the environment (or
    /// the development key, generated on first start), the cadence from
    /// `SENTINEL_CHECKPOINT_EVERY_EVENTS` and `SENTINEL_CHECKPOINT_EVERY_SECS`.
    /// Logs the public key, so it is published wherever the logs go.
    pub fn from_env() -> anyhow::Result<CheckpointPolicy> {
        let mut policy = CheckpointPolicy::new(Signer::load_or_generate()?);
        if let Some(n) = settings::var::<u64>("SENTINEL_CHECKPOINT_EVERY_EVENTS")? {
            policy.every_events = n.max(1);
        }
        if let Some(secs) = settings::var::<f64>("SENTINEL_CHECKPOINT_EVERY_SECS")? {
            policy.every = Duration::try_from_secs_f64(secs.max(0.001))
                .map_err(|e| anyhow::anyhow!("SENTINEL_CHECKPOINT_EVERY_SECS: {e}"))?;
        }
        tracing::info!(
            public_key = %policy.signer.public_key_hex(),
            key_id = policy.signer.key_id(),
            every_events = policy.every_events,
            every_secs = policy.every.as_secs_f64(),
            "signing checkpoints of the event log (Ed25519)"
        );
        Ok(policy)
    }

    /// Whether a batch that ends the log at `head` should be sealed, given
    /// the last checkpoint (`None`: there is none yet).
    pub fn due(&self, head: u64, last: Option<(u64, DateTime<Utc>)>, now: DateTime<Utc>) -> bool {
        match last {
            None => true,
            Some((position, _)) if head <= position => false,
            Some((position, at)) => {
                head - position >= self.every_events
                    || (now - at).to_std().is_ok_and(|d| d >= self.every)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_breaks_it() {
        let signer = Signer::from_seed(&[7; 32]);
        let other = Signer::from_seed(&[8; 32]);
        let cp = signer.sign(42, [3; 32], Utc::now());
        assert_eq!(cp.verify(&[signer.public_key()]), Ok(()));
        assert_eq!(cp.verify(&[]), Ok(()));
        assert!(matches!(
            cp.verify(&[other.public_key()]),
            Err(SignatureProblem::UntrustedKey(_))
        ));
        let moved = Checkpoint {
            position: 43,
            ..cp.clone()
        };
        assert_eq!(
            moved.verify(&[signer.public_key()]),
            Err(SignatureProblem::BadSignature)
        );
        let rehashed = Checkpoint {
            chain_hash: [4; 32],
            ..cp.clone()
        };
        assert_eq!(rehashed.verify(&[]), Err(SignatureProblem::BadSignature));
        // A forger's own key, named honestly, is still not trusted.
        let forged = other.sign(42, [3; 32], cp.signed_at);
        assert!(forged.verify(&[signer.public_key()]).is_err());
    }

    #[test]
    fn due_after_n_events_or_t_seconds() {
        let policy = CheckpointPolicy {
            every_events: 100,
            every: Duration::from_secs(10),
            ..CheckpointPolicy::new(Signer::from_seed(&[1; 32]))
        };
        let now = Utc::now();
        assert!(policy.due(5, None, now));
        assert!(!policy.due(50, Some((10, now)), now));
        assert!(policy.due(110, Some((10, now)), now));
        assert!(policy.due(11, Some((10, now - chrono::Duration::seconds(11))), now));
        assert!(!policy.due(10, Some((10, now - chrono::Duration::seconds(99))), now));
    }
}
