-- Alert state and the notification log, so a restart neither loses a firing alert nor pages
-- twice. Times are fixed-width RFC 3339 UTC text; `doc` is the JSON of the whole record.
CREATE TABLE IF NOT EXISTS telemesh_alerts (
    id            TEXT PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    service       TEXT NOT NULL,
    severity      TEXT NOT NULL,
    pending_since TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS telemesh_alerts_state ON telemesh_alerts (state, pending_since);
CREATE INDEX IF NOT EXISTS telemesh_alerts_fingerprint ON telemesh_alerts (fingerprint, pending_since);

CREATE TABLE IF NOT EXISTS telemesh_alert_notifications (
    id          TEXT NOT NULL,
    channel     TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    status_code INTEGER,
    attempts    INTEGER NOT NULL,
    detail      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (id, channel)
);
CREATE INDEX IF NOT EXISTS telemesh_alert_notifications_outcome ON telemesh_alert_notifications (outcome);

CREATE TABLE IF NOT EXISTS telemesh_alert_issues (
    fingerprint  TEXT NOT NULL,
    channel      TEXT NOT NULL,
    issue_number BIGINT NOT NULL,
    PRIMARY KEY (fingerprint, channel)
);
