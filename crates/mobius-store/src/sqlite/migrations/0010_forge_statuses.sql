-- Where a repository's commit statuses go (GitHub or GitLab), and the outbox of statuses to
-- send there. The token is never here: `token_secret` names a repository secret (sealed in
-- `secrets`), opened only when a status is sent.
CREATE TABLE repository_forges (
    repository   TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,   -- 'github' | 'gitlab'
    api_url      TEXT NOT NULL,   -- e.g. https://api.github.com, https://gitlab.com/api/v4
    token_secret TEXT,            -- the NAME of a secret of the repository
    project      TEXT             -- GitLab's project id or path; NULL: the repository's name
) WITHOUT ROWID;

-- One row per job state to report, written in the transaction that stores the job's state
-- (only for repositories with a forge), drained by the status delivery in id order per
-- context. `delivery`: pending | delivered | failed (gave up) | superseded (a newer state of
-- the same context was sent instead, after a failed attempt).
CREATE TABLE forge_statuses (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    job          TEXT NOT NULL,
    context      TEXT NOT NULL,
    state        TEXT NOT NULL,   -- the job's state: queued, running, success, failure…
    created      INTEGER NOT NULL,
    delivery     TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL DEFAULT 0,  -- microseconds since the Unix epoch
    last_error   TEXT,
    updated      INTEGER NOT NULL
);
CREATE INDEX forge_statuses_pending ON forge_statuses (id) WHERE delivery = 'pending';
CREATE INDEX forge_statuses_run ON forge_statuses (run_id, id);
