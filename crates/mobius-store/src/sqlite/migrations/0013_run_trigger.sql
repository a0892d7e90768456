-- What the event gave a run besides its commit: the `github` and `inputs` contexts as JSON, so
-- a re-run or a re-queue after a restart sees the same as the first attempt; and whether it
-- came from a fork (no secrets, no deployments, a read-only token).
ALTER TABLE runs ADD COLUMN trigger TEXT;
ALTER TABLE runs ADD COLUMN fork INTEGER NOT NULL DEFAULT 0;
