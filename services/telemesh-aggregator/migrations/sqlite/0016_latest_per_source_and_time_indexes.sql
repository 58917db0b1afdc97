-- Issue 16: the same as the PostgreSQL migration of this number. An index for the history
-- query without filters and for retention, and `telemetry_latest`: the newest snapshot of
-- each (kind, service, instance), upserted in the insert transaction, which seeds the summary.
CREATE INDEX IF NOT EXISTS telemetry_snapshots_time ON telemetry_snapshots (generated_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS telemetry_latest (
    kind         TEXT NOT NULL,
    service      TEXT NOT NULL,
    instance     TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (kind, service, instance)
);

-- one-time backfill (SQLite takes the bare columns from the row holding max())
INSERT OR IGNORE INTO telemetry_latest (kind, service, instance, generated_at, body)
SELECT kind, service, instance, max(generated_at), body
FROM telemetry_snapshots
GROUP BY kind, service, instance;
