#!/usr/bin/env bash
# Builds a chained, checkpointed log (the command service fed by the
# simulator) in a fresh database, then times `fraudctl verify` three times
# beside PostgreSQL's own COPY of the columns verify reads (the same run's
# ceiling). docs/benchmarks.md, section "Trust".
#
#   cargo build --release -p fraudctl && scripts/bench/verify-log.sh [DAYS]
#
# DAYS of simulated history for 10,000 customers (default 17: about 0.53 M
# events). Uses PostgreSQL on 127.0.0.1:5432 (user postgres) and drops and
# recreates the database `verifybench`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
B=$PWD/target/release/fraudctl
DAYS=${1:-17}
DB=verifybench
ADDR=127.0.0.1:18181
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export SENTINEL_SIGNING_KEY=${SENTINEL_SIGNING_KEY:-$(printf '%064x' 12345)}
SENTINEL_COMMAND_ADDR=$ADDR RUST_LOG=error "$B" serve --role command >/dev/null 2>&1 &
SERVICE=$!
trap 'kill $SERVICE 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sf "http://$ADDR/readyz" >/dev/null && break; sleep 1; done
"$B" simulate --target "http://$ADDR" --batch 1000 --rate 100000 --customers 10000 --days "$DAYS" --quiet
kill $SERVICE
wait $SERVICE 2>/dev/null || true
psql -h 127.0.0.1 -U postgres -d $DB -Atc \
    "SELECT count(*) || ' events, ' || (SELECT count(*) FROM event_checkpoints) || ' checkpoints' FROM events"
for run in 1 2 3; do
    "$B" verify | sed -n 1p
    psql -h 127.0.0.1 -U postgres -d $DB -qc '\timing on' -c \
        "COPY (SELECT position, event_id, stream_id, stream_version, event_type, schema_version, \
               event_time, recorded_time, correlation_id, causation_id, traceparent, payload::text, \
               prev_hash, hash FROM events ORDER BY position) TO '/dev/null' (FORMAT binary)" \
        | sed "s/^Time/run $run: COPY of the same columns/"
done
