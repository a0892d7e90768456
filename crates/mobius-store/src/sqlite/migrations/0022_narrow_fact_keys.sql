-- Narrower keys for the tables a bulk import writes most (bench/RESULTS.md, "Import: narrower
-- keys"): each row inserted lands in a B-tree at a random place, so the fewer bytes a key
-- takes, the more of the tree stays in the page cache.

-- (service, environment), repositories, and (repository, branch) as small integers, each
-- interned once by the writer.
CREATE TABLE fact_scopes (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL,
    environment TEXT NOT NULL,
    UNIQUE (service, environment)
);
CREATE TABLE fact_repositories (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE push_branches (
    id         INTEGER PRIMARY KEY,
    repository TEXT NOT NULL,
    branch     TEXT NOT NULL,
    UNIQUE (repository, branch)
);

INSERT INTO fact_scopes (service, environment)
    SELECT DISTINCT service, environment FROM deployment_changes ORDER BY 1, 2;
INSERT INTO fact_repositories (name)
    SELECT repository FROM deployment_changes UNION SELECT repository FROM changes ORDER BY 1;
INSERT INTO push_branches (repository, branch) SELECT DISTINCT repository, branch FROM push_stream ORDER BY 1, 2;

-- The changes each deployment shipped first to its scope. sha before repository: `root
-- cause: <sha prefix>` looks commits up by prefix. Nothing refers to the deployment but its
-- writer, which has just inserted it.
CREATE TABLE deployment_changes_0022 (
    scope         INTEGER NOT NULL,   -- fact_scopes
    sha           TEXT NOT NULL,
    repository    INTEGER NOT NULL,   -- fact_repositories
    deployment_id INTEGER NOT NULL,
    PRIMARY KEY (scope, sha, repository)
) WITHOUT ROWID;
INSERT INTO deployment_changes_0022 (scope, sha, repository, deployment_id)
    SELECT s.id, dc.sha, r.id, dc.deployment_id
    FROM deployment_changes dc
    JOIN fact_scopes s ON s.service = dc.service AND s.environment = dc.environment
    JOIN fact_repositories r ON r.name = dc.repository;
DROP TABLE deployment_changes;
ALTER TABLE deployment_changes_0022 RENAME TO deployment_changes;
CREATE INDEX deployment_changes_deployment ON deployment_changes (deployment_id);

-- Commits, by repository id and sha.
CREATE TABLE changes_0022 (
    repository  INTEGER NOT NULL,   -- fact_repositories
    sha         TEXT NOT NULL,
    commit_time INTEGER NOT NULL,
    author_time INTEGER,
    message     TEXT NOT NULL,
    PRIMARY KEY (repository, sha)
) WITHOUT ROWID;
INSERT INTO changes_0022 (repository, sha, commit_time, author_time, message)
    SELECT r.id, c.sha, c.commit_time, c.author_time, c.message
    FROM changes c JOIN fact_repositories r ON r.name = c.repository;
DROP TABLE changes;
ALTER TABLE changes_0022 RENAME TO changes;

-- Every commit as pushed, in push order (`position` is global).
CREATE TABLE push_stream_0022 (
    position INTEGER PRIMARY KEY,
    branch   INTEGER NOT NULL,   -- push_branches
    sha      TEXT NOT NULL
);
INSERT INTO push_stream_0022 (position, branch, sha)
    SELECT p.position, b.id, p.sha
    FROM push_stream p JOIN push_branches b ON b.repository = p.repository AND b.branch = p.branch;
DROP TABLE push_stream;
ALTER TABLE push_stream_0022 RENAME TO push_stream;
CREATE INDEX push_stream_branch ON push_stream (branch, position);
CREATE INDEX push_stream_sha ON push_stream (sha, position);

-- The log, its `(source, id)` identity checked through `key`, a 64-bit hash of the two
-- (`mobius_store::sqlite::facts::event_key`), instead of a unique index on the text itself.
-- The writer computes it: rows copied here get theirs when the store is next opened, before
-- anything is appended.
CREATE TABLE events_0022 (
    seq      INTEGER PRIMARY KEY,
    source   TEXT NOT NULL,
    id       TEXT NOT NULL,
    type     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    ts       INTEGER NOT NULL,   -- µs since epoch: when it happened
    received INTEGER NOT NULL,   -- µs since epoch: when we stored it
    origin   TEXT NOT NULL,
    raw      TEXT NOT NULL,
    key      INTEGER             -- hash of (source, id); NULL only until backfilled
);
INSERT INTO events_0022 (seq, source, id, type, subject, ts, received, origin, raw, key)
    SELECT seq, source, id, type, subject, ts, received, origin, raw, NULL FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_0022 RENAME TO events;
CREATE INDEX events_key ON events (key);
CREATE INDEX events_ts ON events (ts);
