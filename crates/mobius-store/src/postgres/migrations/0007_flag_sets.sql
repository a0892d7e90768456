-- SQLite's migration 0019: feature flag sets, a tombstone (NULL document) for a deleted one.
CREATE TABLE flag_sets (
    name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    environment TEXT COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    document    TEXT,
    updated     BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);
