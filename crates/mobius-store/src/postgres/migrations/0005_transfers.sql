-- SQLite's migration 0018: files passing through the store for agent jobs (see
-- `mobius_store::transfers`).
CREATE TABLE blobs (
    digest TEXT COLLATE "C" PRIMARY KEY,
    bytes  BYTEA NOT NULL
);

CREATE TABLE transfer_files (
    transfer TEXT COLLATE "C" NOT NULL,
    name     TEXT COLLATE "C" NOT NULL,
    digest   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (transfer, name)
);
CREATE INDEX transfer_files_digest ON transfer_files (digest);
