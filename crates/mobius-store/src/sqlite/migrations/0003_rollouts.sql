-- Rollouts of services to environments, as their controller stores them: the state machine
-- itself is JSON (`body`, mobius-deploy's `Rollout`), with the columns queries filter on.
CREATE TABLE rollouts (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL,
    environment TEXT NOT NULL,
    phase       TEXT NOT NULL,
    -- 1 while the controller still has work: not finished, or an old version still warm.
    active      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);
CREATE INDEX rollouts_scope ON rollouts (service, environment, id);
CREATE INDEX rollouts_active ON rollouts (active);
