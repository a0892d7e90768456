-- The agent job queue (see `mobius_store::agents`). All instants in µs.

-- Agents as last seen: recorded at each poll and renewal. `labels` is a JSON array of strings.
CREATE TABLE agents (
    id            TEXT PRIMARY KEY,   -- the agent process's name and random suffix
    name          TEXT NOT NULL,
    labels        TEXT NOT NULL,
    token         TEXT NOT NULL,      -- the id of its `agent` token
    first_contact INTEGER NOT NULL,
    last_contact  INTEGER NOT NULL
);

-- Jobs for agents: queued, then running under the lease of the agent that claimed it, then
-- finished, lost (the lease lapsed or the token was revoked) or cancelled (while queued).
-- `labels` is a JSON array of the labels a claimer must all have; `payload` and `result` are
-- opaque to the store (the application seals the one and reads the other). `log_len` is how
-- many bytes of log `agent_job_logs` holds, updated in the transaction that adds to it.
CREATE TABLE agent_jobs (
    id            INTEGER PRIMARY KEY,
    run           INTEGER NOT NULL,
    job           TEXT NOT NULL,
    labels        TEXT NOT NULL,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL,      -- queued, running, finished, lost, cancelled
    agent         TEXT,
    token         TEXT,
    lease_expires INTEGER,
    cancel        INTEGER NOT NULL DEFAULT 0,
    log_len       INTEGER NOT NULL DEFAULT 0,
    result        TEXT,
    reason        TEXT,
    queued        INTEGER NOT NULL,
    claimed       INTEGER,
    ended         INTEGER
);
-- A claimer walks the queued jobs oldest first, and the sweeps (lapsed leases, a revoked
-- token's jobs) the running ones, without reading the ended jobs, which pile up.
CREATE INDEX agent_jobs_state ON agent_jobs (state, id);

-- A job's log as the chunks that made it, each starting at byte `start`: chunks never overlap
-- and together cover [0, log_len) of their job.
CREATE TABLE agent_job_logs (
    job   INTEGER NOT NULL REFERENCES agent_jobs (id),
    start INTEGER NOT NULL,
    data  BLOB NOT NULL,
    PRIMARY KEY (job, start)
);
