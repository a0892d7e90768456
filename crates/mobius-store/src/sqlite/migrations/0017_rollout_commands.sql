-- The rollout command queue (see `mobius_store::commands`): changes to an environment's
-- rollouts asked of whichever replica drives it. All instants in µs.
--
-- Queued by the replica a request reached, claimed by the one holding the environment's lease,
-- then done (with its answer in `result`), lost (its claimer lost the lease first) or
-- withdrawn (its asker stopped waiting before anyone claimed it). `body` and `result` are
-- opaque to the store.
CREATE TABLE rollout_commands (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL,
    environment TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,      -- queued, claimed, done, lost, withdrawn
    holder      TEXT,
    result      TEXT,
    queued      INTEGER NOT NULL,
    claimed     INTEGER,
    ended       INTEGER
);
-- A claimer walks the queued commands oldest first without reading the ended ones.
CREATE INDEX rollout_commands_state ON rollout_commands (state, id);
