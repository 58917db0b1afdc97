-- Issue 16: queries that do not grow with the table.
--
-- 1. B-tree indexes matching the history API's `ORDER BY generated_at DESC, id DESC LIMIT n`
--    (with or without a kind / service filter), so every API query reads O(limit) index
--    entries. They replace the BRIN index (which cannot serve an ORDER BY … LIMIT).
-- 2. `telemetry_latest`: the newest snapshot of each (kind, service, instance), upserted in the
--    same transaction as the journal insert; the summary is seeded from it at start.
--    (Versioned 0016, after the issue, so parallel migrations of other issues do not collide.)
DROP INDEX IF EXISTS telemetry_snapshots_generated_brin;
DROP INDEX IF EXISTS telemetry_snapshots_kind_time;
DROP INDEX IF EXISTS telemetry_snapshots_service_time;
CREATE INDEX IF NOT EXISTS telemetry_snapshots_time
    ON telemetry_snapshots (generated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS telemetry_snapshots_kind_time_id
    ON telemetry_snapshots (kind, generated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS telemetry_snapshots_service_time_id
    ON telemetry_snapshots (service, generated_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS telemetry_latest (
    kind         text        NOT NULL,
    service      text        NOT NULL,
    instance     text        NOT NULL,
    generated_at timestamptz NOT NULL,
    body         jsonb       NOT NULL,
    PRIMARY KEY (kind, service, instance)
);

-- one-time backfill from what is already journaled
INSERT INTO telemetry_latest (kind, service, instance, generated_at, body)
SELECT DISTINCT ON (kind, service, instance) kind, service, instance, generated_at, body
FROM telemetry_snapshots
ORDER BY kind, service, instance, generated_at DESC
ON CONFLICT (kind, service, instance) DO NOTHING;
