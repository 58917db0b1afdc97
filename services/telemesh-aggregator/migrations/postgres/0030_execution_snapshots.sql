-- The execution journal (DOMAINS.md §5.4): one row per journaled
-- telemetry.operational.execution snapshot, written in the same transaction as its snapshot
-- row. A hypertable on recorded_at when the journal runs on TimescaleDB (created by the
-- aggregator after the migrations), a plain table with B-tree indexes otherwise.
CREATE TABLE IF NOT EXISTS execution_snapshots (
    snapshot_id           uuid             NOT NULL,
    service               text             NOT NULL,
    instance              text             NOT NULL,
    strategy_id           text,
    status                text             NOT NULL CHECK (status IN ('ok', 'warn', 'fail')),
    fill_rate             double precision,
    failure_rate          double precision,
    orders_submitted      bigint,
    orders_executed       bigint,
    orders_failed         bigint,
    pending_orders        bigint,
    avg_latency_ms        double precision,
    max_latency_ms        double precision,
    drop_copy_lag_seconds double precision,
    drop_copy_active      boolean,
    connection_healthy    boolean,
    sessions_active       jsonb,
    issues                jsonb,
    policy                jsonb,
    state                 jsonb,
    metadata              jsonb,
    recorded_at           timestamptz      NOT NULL DEFAULT now(),
    -- the time column is part of every unique key (required by hypertables)
    PRIMARY KEY (snapshot_id, recorded_at)
);

CREATE INDEX IF NOT EXISTS telemetry_execution_snapshots_service_idx
    ON execution_snapshots (service, recorded_at DESC);
CREATE INDEX IF NOT EXISTS telemetry_execution_snapshots_recorded_idx
    ON execution_snapshots (recorded_at DESC);
