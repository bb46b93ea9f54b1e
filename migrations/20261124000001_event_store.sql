-- The event log (PostgreSQL backend).
--
-- Global order is gap-safe because every append transaction takes the
-- writer lock (pg_advisory_xact_lock, see docs/adr/0001) before it draws
-- positions from event_position_seq, and holds it until commit: positions
-- are therefore handed out in commit order, and a reader that has seen
-- position P can never later see a lower one appear.

CREATE SEQUENCE event_position_seq AS bigint START 1;

CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version >= 0),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    event_time      timestamptz NOT NULL,
    recorded_time   timestamptz NOT NULL DEFAULT clock_timestamp(),
    correlation_id  uuid,
    causation_id    uuid,
    traceparent     text,
    -- json, not jsonb: the log keeps the exact bytes it was given (what a
    -- hash chain over history must cover), and neither append nor read pays
    -- for a jsonb conversion. Read models are where querying happens.
    payload         json        NOT NULL,
    -- Also how a stream's current version is found (its newest entry):
    -- versions are not stored a second time. The first event is version 0.
    UNIQUE (stream_id, stream_version)
);

-- The log is append-only: refuse UPDATE and DELETE outright, so no code path
-- (or slip of a hand at a psql prompt) can rewrite history.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only (% refused)', TG_OP;
END $$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();
