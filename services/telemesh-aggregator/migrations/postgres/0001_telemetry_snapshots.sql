-- The journal of every snapshot the aggregator received. Same columns on TimescaleDB
-- (hypertable on generated_at, created by the aggregator after this migration when the
-- extension is available) and on plain PostgreSQL (BRIN index on generated_at).
CREATE TABLE IF NOT EXISTS telemetry_snapshots (
    id              uuid        NOT NULL,
    kind            text        NOT NULL,
    service         text        NOT NULL,
    instance        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('ok', 'warn', 'fail')),
    generated_at    timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    summary         text        NOT NULL,
    body            jsonb       NOT NULL,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    -- the time column is part of every unique key (required by hypertables)
    PRIMARY KEY (id, generated_at)
);

CREATE INDEX IF NOT EXISTS telemetry_snapshots_kind_time
    ON telemetry_snapshots (kind, generated_at DESC);
CREATE INDEX IF NOT EXISTS telemetry_snapshots_service_time
    ON telemetry_snapshots (service, generated_at DESC);
