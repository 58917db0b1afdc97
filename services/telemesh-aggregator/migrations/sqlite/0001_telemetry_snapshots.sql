-- SQLite journal of standalone mode: the same columns as PostgreSQL. Times are stored as
-- fixed-width RFC 3339 text (microseconds, `Z`), so text order is time order.
CREATE TABLE IF NOT EXISTS telemetry_snapshots (
    id              TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    service         TEXT    NOT NULL,
    instance        TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('ok', 'warn', 'fail')),
    generated_at    TEXT    NOT NULL,
    received_at     TEXT    NOT NULL,
    summary         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    kafka_topic     TEXT,
    kafka_partition INTEGER,
    kafka_offset    INTEGER,
    PRIMARY KEY (id, generated_at)
);

CREATE INDEX IF NOT EXISTS telemetry_snapshots_kind_time
    ON telemetry_snapshots (kind, generated_at DESC);
CREATE INDEX IF NOT EXISTS telemetry_snapshots_service_time
    ON telemetry_snapshots (service, generated_at DESC);
