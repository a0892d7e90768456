-- Files passing through the store for agent jobs (see `mobius_store::transfers`).

-- Content by its SHA-256 (64 lowercase hex digits), kept while some transfer names it.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
);

-- The names a transfer gives blobs: `source` (the workspace tar), `made` (the records the
-- job made), or a blob's own digest (an artifact's or a cache's file).
CREATE TABLE transfer_files (
    transfer TEXT NOT NULL,
    name     TEXT NOT NULL,
    digest   TEXT NOT NULL,
    PRIMARY KEY (transfer, name)
);
-- Releasing a transfer asks, for each of its blobs, whether another transfer names it.
CREATE INDEX transfer_files_digest ON transfer_files (digest);
