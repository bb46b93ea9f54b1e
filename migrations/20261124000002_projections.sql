-- The projection side's shared tables. Each projector's read models live in
-- a schema of its own (rm_<name>, created by the projection service, ADR
-- 0005); what is here is what every projector reports into.

-- Events a projector could not handle (decode or upcast failure), kept with
-- the position and the error. Written in the same transaction as the batch
-- that skipped them.
CREATE TABLE projection_dead_letters (
    id bigserial PRIMARY KEY,
    projection text NOT NULL,
    version integer NOT NULL,
    position bigint NOT NULL,
    event_id uuid NOT NULL,
    stream_id text NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL,
    error text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, version, position)
);

-- What each running projector instance last reported (about once a second):
-- the query API's `projections` and the dashboards read this.
CREATE TABLE projection_status (
    projection text NOT NULL,
    -- 'live' for the instance serving queries, 'rebuild' for a rebuild in progress.
    role text NOT NULL,
    partition_index integer NOT NULL,
    partition_count integer NOT NULL,
    version integer NOT NULL,
    -- live | rebuilding | stopped | failed
    state text NOT NULL,
    checkpoint bigint NOT NULL,
    head bigint NOT NULL,
    lag_events bigint NOT NULL,
    lag_seconds double precision NOT NULL,
    dead_letter_policy text NOT NULL,
    dead_letters bigint NOT NULL,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, role, partition_count, partition_index)
);
