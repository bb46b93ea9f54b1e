-- Crypto-shredding (docs/trust.md, ADR 0021): each customer's data key,
-- which seals their personal fields (IP address, user agent) in the log,
-- wrapped (XChaCha20-Poly1305) by the master key that lives outside the
-- database (SENTINEL_MASTER_KEY). Erasing a customer sets `wrapped_key` to
-- NULL: every ciphertext under that key is unreadable from then on, while
-- the log itself (and its hash chain) is never touched.
--
-- `generation` counts the customer's keys: a customer who transacts again
-- after an erasure gets a new key (generation + 1); sealed values name the
-- generation they were written under. The row whose customer_id is '' (never
-- a valid customer id) is the key of quarantined input whose customer could
-- not be read.
CREATE TABLE customer_keys (
    customer_id   text PRIMARY KEY,
    generation    integer NOT NULL CHECK (generation >= 0),
    -- nonce (24 bytes) || ciphertext of the 32-byte key || tag (16 bytes);
    -- NULL once erased.
    wrapped_key   bytea CHECK (wrapped_key IS NULL OR length(wrapped_key) = 72),
    -- Which master key wrapped it (hex of 8 bytes of its SHA-256): rotating
    -- the master key re-wraps every row and changes this.
    master_key_id text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- The newest erasure, if any.
    erased_at     timestamptz
);
