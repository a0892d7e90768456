-- The append-only log. `raw` is the body exactly as received; everything else is pulled out
-- of it for queries. (source, id) is the CDEvents identity: a re-delivery is a duplicate.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    source   TEXT NOT NULL,
    id       TEXT NOT NULL,
    type     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    ts       INTEGER NOT NULL,   -- µs since epoch: when it happened
    received INTEGER NOT NULL,   -- µs since epoch: when we stored it
    origin   TEXT NOT NULL,
    raw      TEXT NOT NULL,
    UNIQUE (source, id)
);

-- Facts. All instants are µs since the Unix epoch.
CREATE TABLE changes (
    repository  TEXT NOT NULL,
    sha         TEXT NOT NULL,
    commit_time INTEGER NOT NULL,
    author_time INTEGER,
    message     TEXT NOT NULL,
    PRIMARY KEY (repository, sha)
) WITHOUT ROWID;

-- Every commit as pushed, in push order; `position` is global, so the latest push of a
-- commit has the highest position.
CREATE TABLE push_stream (
    position   INTEGER PRIMARY KEY,
    repository TEXT NOT NULL,
    branch     TEXT NOT NULL,
    sha        TEXT NOT NULL
);
CREATE INDEX push_stream_branch ON push_stream (repository, branch, position);
CREATE INDEX push_stream_sha ON push_stream (sha, position);

CREATE TABLE merges (
    repository    TEXT NOT NULL,
    merge_sha     TEXT NOT NULL,
    source_branch TEXT NOT NULL,
    target_branch TEXT NOT NULL,
    merged_at     INTEGER NOT NULL,
    PRIMARY KEY (repository, merge_sha)
) WITHOUT ROWID;

CREATE TABLE artifacts (
    artifact_id TEXT PRIMARY KEY,
    repository  TEXT,
    revision    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE deployments (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    service      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    repository   TEXT,
    revision     TEXT,
    artifact_id  TEXT,
    started      INTEGER NOT NULL,
    finished     INTEGER NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    rolled_back  INTEGER,
    changes_from TEXT NOT NULL
);
CREATE INDEX deployments_scope ON deployments (service, environment, outcome, finished);
CREATE INDEX deployments_artifact ON deployments (artifact_id, finished);

-- The changes each deployment shipped first to its service and environment.
CREATE TABLE deployment_changes (
    service       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    repository    TEXT NOT NULL,
    sha           TEXT NOT NULL,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    -- sha before repository: `root cause: <sha prefix>` looks commits up by prefix.
    PRIMARY KEY (service, environment, sha, repository)
) WITHOUT ROWID;
CREATE INDEX deployment_changes_deployment ON deployment_changes (deployment_id);

CREATE TABLE rollbacks (
    key           TEXT PRIMARY KEY,
    service       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    artifact_id   TEXT,
    at            INTEGER NOT NULL,
    deployment_id INTEGER REFERENCES deployments (id)
) WITHOUT ROWID;

CREATE TABLE incidents (
    key           TEXT PRIMARY KEY,
    service       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    title         TEXT NOT NULL,
    detected      INTEGER NOT NULL,
    acknowledged  INTEGER,
    resolved      INTEGER,
    deployment_id INTEGER REFERENCES deployments (id),
    attribution   TEXT NOT NULL,
    cause         TEXT             -- JSON of the sender's hint, if any
) WITHOUT ROWID;
CREATE INDEX incidents_scope ON incidents (service, environment, detected);
CREATE INDEX incidents_resolved ON incidents (service, environment, resolved);
CREATE INDEX incidents_deployment ON incidents (deployment_id);

CREATE TABLE pipeline_runs (
    key        TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    repository TEXT,
    revision   TEXT,
    branch     TEXT,
    queued     INTEGER,
    started    INTEGER,
    finished   INTEGER,
    outcome    TEXT
) WITHOUT ROWID;
CREATE INDEX pipeline_runs_revision ON pipeline_runs (revision);

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL,
    created       INTEGER NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE
) WITHOUT ROWID;

CREATE TABLE repositories (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL
) WITHOUT ROWID;
