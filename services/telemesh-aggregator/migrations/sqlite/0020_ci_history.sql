-- The CI history (issue 13) of standalone mode: the PostgreSQL columns, JSON as TEXT, times as
-- fixed-width RFC 3339 text (text order is time order). See the PostgreSQL migration.
CREATE TABLE IF NOT EXISTS ci_test_results (
    upload_id        TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    test_id          TEXT    NOT NULL,
    outcome          TEXT    NOT NULL,
    duration_seconds REAL,
    failure          TEXT,
    retried_failures INTEGER,
    commit_sha       TEXT    NOT NULL,
    branch           TEXT,
    run_id           TEXT,
    run_url          TEXT,
    suite            TEXT,
    format           TEXT,
    recorded_at      TEXT    NOT NULL,
    PRIMARY KEY (upload_id, position, recorded_at)
);

CREATE INDEX IF NOT EXISTS ci_test_results_recorded_idx
    ON ci_test_results (recorded_at, upload_id, position);
CREATE INDEX IF NOT EXISTS ci_test_results_commit_idx
    ON ci_test_results (commit_sha, recorded_at);
CREATE INDEX IF NOT EXISTS ci_test_results_test_idx
    ON ci_test_results (test_id, recorded_at);

CREATE TABLE IF NOT EXISTS ci_trends (
    entry_id    TEXT NOT NULL,
    entry_kind  TEXT NOT NULL CHECK (entry_kind IN ('coverage', 'formatter')),
    label       TEXT NOT NULL,
    percent     REAL,
    detail      TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (entry_id, recorded_at)
);

CREATE INDEX IF NOT EXISTS ci_trends_recorded_idx ON ci_trends (recorded_at, entry_id);

CREATE TABLE IF NOT EXISTS ci_pipeline_runs (
    run_id      INTEGER NOT NULL,
    run_attempt INTEGER NOT NULL,
    workflow    TEXT,
    conclusion  TEXT,
    branch      TEXT,
    commit_sha  TEXT,
    run_url     TEXT,
    run         TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (run_id, run_attempt)
);

CREATE INDEX IF NOT EXISTS ci_pipeline_runs_recorded_idx
    ON ci_pipeline_runs (recorded_at, run_id, run_attempt);
