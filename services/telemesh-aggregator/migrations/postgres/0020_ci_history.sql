-- The CI history (issue 13): rows derived from journaled telemetry.ci.history records, written
-- in the same transaction as their snapshot row (journal/ci.rs). ci_test_results and
-- ci_trends become hypertables on recorded_at when the journal runs on TimescaleDB (created by
-- the aggregator after the migrations); every unique key holds the time column for that.

-- One row per test of an uploaded report (JUnit or flake_runs.json).
CREATE TABLE IF NOT EXISTS ci_test_results (
    upload_id        text             NOT NULL,
    position         bigint           NOT NULL,
    test_id          text             NOT NULL,
    outcome          text             NOT NULL,
    duration_seconds double precision,
    failure          text,
    retried_failures bigint,
    commit_sha       text             NOT NULL,
    branch           text,
    run_id           text,
    run_url          text,
    suite            text,
    format           text,
    recorded_at      timestamptz      NOT NULL,
    PRIMARY KEY (upload_id, position, recorded_at)
);

CREATE INDEX IF NOT EXISTS ci_test_results_recorded_idx
    ON ci_test_results (recorded_at, upload_id, position);
CREATE INDEX IF NOT EXISTS ci_test_results_commit_idx
    ON ci_test_results (commit_sha, recorded_at);
CREATE INDEX IF NOT EXISTS ci_test_results_test_idx
    ON ci_test_results (test_id, recorded_at);

-- Coverage entries (overall percent, per-directory domains in detail) and formatter modes.
CREATE TABLE IF NOT EXISTS ci_trends (
    entry_id    text             NOT NULL,
    entry_kind  text             NOT NULL CHECK (entry_kind IN ('coverage', 'formatter')),
    label       text             NOT NULL,
    percent     double precision,
    detail      jsonb,
    recorded_at timestamptz      NOT NULL,
    PRIMARY KEY (entry_id, recorded_at)
);

CREATE INDEX IF NOT EXISTS ci_trends_recorded_idx ON ci_trends (recorded_at, entry_id);

-- One row per completed workflow run and attempt (the newest record of it wins).
CREATE TABLE IF NOT EXISTS ci_pipeline_runs (
    run_id      bigint      NOT NULL,
    run_attempt bigint      NOT NULL,
    workflow    text,
    conclusion  text,
    branch      text,
    commit_sha  text,
    run_url     text,
    run         jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, run_attempt)
);

CREATE INDEX IF NOT EXISTS ci_pipeline_runs_recorded_idx
    ON ci_pipeline_runs (recorded_at, run_id, run_attempt);
