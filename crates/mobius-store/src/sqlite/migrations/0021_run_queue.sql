-- Runs are a queue in the store (issue 14, item 3): a queued run with no `driver` may be
-- claimed by any replica with a free run slot, which becomes its driver (`<node> <holder>`,
-- also kept as `run-driver:<id>` in `server_state` for the orphan sweep). Runs in flight when
-- this migration runs were planned by a process that drove them itself: they keep a driver
-- (none recorded: the next start treats them as before).
ALTER TABLE runs ADD COLUMN driver TEXT;
UPDATE runs SET driver = '' WHERE state IN ('queued', 'waiting', 'running');
CREATE INDEX runs_unclaimed ON runs (id) WHERE state = 'queued' AND driver IS NULL;
CREATE INDEX runs_group ON runs (concurrency_group) WHERE concurrency_group IS NOT NULL;

-- A commit status is claimed before it is sent (`claimed_by` until `claimed_until`,
-- microseconds), so two replicas never send the same one; a claim that lapsed (its holder
-- died mid-send) may be taken again.
ALTER TABLE forge_statuses ADD COLUMN claimed_by TEXT;
ALTER TABLE forge_statuses ADD COLUMN claimed_until INTEGER;
CREATE INDEX forge_statuses_context ON forge_statuses (run_id, job) WHERE delivery = 'pending';
