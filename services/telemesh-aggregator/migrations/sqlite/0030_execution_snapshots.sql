-- The execution journal (DOMAINS.md §5.4) of standalone mode: the PostgreSQL columns, JSON as
-- TEXT, times as fixed-width RFC 3339 text (text order is time order).
CREATE TABLE IF NOT EXISTS execution_snapshots (
    snapshot_id           TEXT    NOT NULL,
    service               TEXT    NOT NULL,
    instance              TEXT    NOT NULL,
    strategy_id           TEXT,
    status                TEXT    NOT NULL CHECK (status IN ('ok', 'warn', 'fail')),
    fill_rate             REAL,
    failure_rate          REAL,
    orders_submitted      INTEGER,
    orders_executed       INTEGER,
    orders_failed         INTEGER,
    pending_orders        INTEGER,
    avg_latency_ms        REAL,
    max_latency_ms        REAL,
    drop_copy_lag_seconds REAL,
    drop_copy_active      INTEGER,
    connection_healthy    INTEGER,
    sessions_active       TEXT,
    issues                TEXT,
    policy                TEXT,
    state                 TEXT,
    metadata              TEXT,
    recorded_at           TEXT    NOT NULL,
    PRIMARY KEY (snapshot_id, recorded_at)
);

CREATE INDEX IF NOT EXISTS telemetry_execution_snapshots_service_idx
    ON execution_snapshots (service, recorded_at DESC);
CREATE INDEX IF NOT EXISTS telemetry_execution_snapshots_recorded_idx
    ON execution_snapshots (recorded_at DESC);
