-- Pipeline runs executed by this server: what ran, for which commit, and how each job and
-- step ended. The CDEvents a run emits go to the event log as usual; these tables hold the
-- operational state `mobius runs` shows and the restart logic needs.
CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    repository         TEXT NOT NULL,
    workflow_file      TEXT NOT NULL,
    workflow_name      TEXT NOT NULL,
    event              TEXT NOT NULL,
    branch             TEXT,
    sha                TEXT NOT NULL,
    -- The sha the branch pointed at before this push (NULL for a new branch or a manual run).
    before_sha         TEXT,
    concurrency_group  TEXT,
    cancel_in_progress INTEGER NOT NULL DEFAULT 0,
    -- JSON array of job ids to run (a re-run of the failed jobs); empty array for all jobs.
    only_jobs          TEXT NOT NULL DEFAULT '[]',
    attempt            INTEGER NOT NULL DEFAULT 1,
    rerun_of           INTEGER REFERENCES runs (id),
    -- Set on the run created when a server restart interrupted `requeue_of`.
    requeue_of         INTEGER REFERENCES runs (id),
    state              TEXT NOT NULL,
    reason             TEXT,
    queued_at          INTEGER NOT NULL,
    started_at         INTEGER,
    finished_at        INTEGER
);
CREATE INDEX runs_state ON runs (state);
CREATE INDEX runs_repository ON runs (repository, id);

CREATE TABLE run_jobs (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    name       TEXT NOT NULL,
    position   INTEGER NOT NULL,
    state      TEXT NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

CREATE TABLE run_steps (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    job         TEXT NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (run_id, job, position)
) WITHOUT ROWID;

-- The branch heads last seen in each registered repository: a commit is new when a head moves.
CREATE TABLE repository_heads (
    repository TEXT NOT NULL,
    ref        TEXT NOT NULL,
    sha        TEXT NOT NULL,
    PRIMARY KEY (repository, ref)
) WITHOUT ROWID;
-- A repository whose heads were recorded at least once (it may have no branches yet).
CREATE TABLE repository_heads_seen (
    repository TEXT PRIMARY KEY
) WITHOUT ROWID;
