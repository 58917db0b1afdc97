-- Drills and training sessions recorded through POST /api/v1/activities (incident-response and
-- `telemesh alert drill` write here instead of a local file). Times are fixed-width RFC 3339
-- UTC text, so text order is time order on both backends.
CREATE TABLE IF NOT EXISTS telemesh_incident_activities (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('drill', 'training')),
    at          TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    note        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS telemesh_incident_activities_kind_at
    ON telemesh_incident_activities (kind, at);
