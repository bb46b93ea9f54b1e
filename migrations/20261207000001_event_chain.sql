-- Trust in the log (docs/trust.md, docs/adr/0017): a hash chain over the
-- global order and signed checkpoints that seal it.
--
-- Every event written from now on carries `prev_hash` (the hash of the event
-- before it in position order; 32 zero bytes for the first chained event)
-- and `hash` (SHA-256 over that, its position, stream version, recorded
-- time and the digest of its content). The group-commit writer computes
-- both under the writer lock, so the chain follows the commit order across
-- every process (event-store/src/postgres/writer.rs).
--
-- Events written before this migration are left as they are: the log is
-- never rewritten. The chain starts after the position recorded in
-- `event_chain_start`; everything above it must be chained, and
-- `fraudctl verify` counts (and names) what lies below it as unprotected.

ALTER TABLE events ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;

-- Both or neither, 32 bytes each. NOT VALID: older rows (all NULL) need no
-- scan, and the check applies to every new row.
ALTER TABLE events ADD CONSTRAINT events_chain_link CHECK (
    (prev_hash IS NULL AND hash IS NULL)
    OR (octet_length(prev_hash) = 32 AND octet_length(hash) = 32)
) NOT VALID;

CREATE TABLE event_chain_start (
    only_row       boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    -- The last position written before the chain existed (0: none).
    after_position bigint  NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO event_chain_start (after_position)
SELECT coalesce(max(position), 0) FROM events;

-- Signed checkpoints: "the chain hash at `position` was `chain_hash`",
-- signed with Ed25519 by the writer, in the same transaction as the events
-- it seals. Kept beside the log rather than in it, so cutting the log's
-- tail leaves the checkpoints that covered it pointing past the new end.
CREATE TABLE event_checkpoints (
    position   bigint      PRIMARY KEY,
    chain_hash bytea       NOT NULL CHECK (octet_length(chain_hash) = 32),
    signed_at  timestamptz NOT NULL,
    key_id     text        NOT NULL,
    public_key bytea       NOT NULL CHECK (octet_length(public_key) = 32),
    signature  bytea       NOT NULL CHECK (octet_length(signature) = 64)
);

-- Append-only, like the log (the function is the log's own).
CREATE TRIGGER event_checkpoints_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON event_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();
CREATE TRIGGER event_chain_start_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON event_chain_start
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- Raised by the writer's INSERT when the log's head or the next positions
-- are not what the writer computed the chain from (another process wrote
-- since it last looked); the writer then reads the head and tries again.
CREATE FUNCTION event_chain_moved() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the log moved: the chain head or the next position is not what the writer expected'
        USING ERRCODE = 'SNCH1';
END $$;
