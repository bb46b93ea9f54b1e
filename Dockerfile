# syntax=docker/dockerfile:1
# The Sentinel services' images, built in two stages: the workspace is
# compiled once (release) in a Rust image, and each service gets a slim
# Debian image with its binary and `fraudctl` (replay, migrate, status),
# built with the KurrentDB backend (see SENTINEL_FEATURES below).
# docker-compose.yml picks a service with `target:`; on its own:
#   docker build --target command-service -t sentinel/command-service .

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# The cargo features the binaries are built with. By default they carry the
# KurrentDB event log (SENTINEL_EVENT_STORE=esdb://..., as docker-compose.yml
# runs them); `--build-arg SENTINEL_FEATURES=` builds PostgreSQL-only images.
ARG SENTINEL_FEATURES="command-service/esdb projection-service/esdb query-api/esdb fraudctl/esdb"
WORKDIR /src
COPY . .
# Caches survive between builds; the binaries are copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features "${SENTINEL_FEATURES}" \
        -p command-service -p projection-service -p query-api -p fraudctl \
    && mkdir -p /out \
    && cp target/release/command-service target/release/projection-service \
          target/release/query-api target/release/fraudctl /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# curl: the health checks; ca-certificates: TLS to an external database or collector.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin sentinel
COPY --from=build /out/fraudctl /usr/local/bin/fraudctl
USER sentinel
ENV RUST_LOG=info,sqlx=warn
# The services shut down gracefully on Ctrl-C (SIGINT): finish requests in
# flight, roll back or finish a projector's batch, flush traces.
STOPSIGNAL SIGINT

FROM runtime AS command-service
COPY --from=build /out/command-service /usr/local/bin/command-service
ENV SENTINEL_COMMAND_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["command-service"]

FROM runtime AS projection-service
COPY --from=build /out/projection-service /usr/local/bin/projection-service
ENV SENTINEL_PROJECTION_ADDR=0.0.0.0:8082
EXPOSE 8082
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8082/healthz"]
ENTRYPOINT ["projection-service"]

FROM runtime AS query-api
COPY --from=build /out/query-api /usr/local/bin/query-api
ENV SENTINEL_QUERY_ADDR=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8081/healthz"]
ENTRYPOINT ["query-api"]
