-- Feature flag sets (issue 15): the current flagd document of each set, with the version that
-- grows by one with each change and is compared by optimistic writes. A deleted set keeps its
-- row with a NULL document (a tombstone), so its version never goes back: a subscriber or an
-- HTTP cache that saw version 7 never takes a later set of the same name for it. `environment`
-- is the deployment environment the set belongs to ('' for none). Each change is written in
-- the transaction that appends its `mobius-flag.changed` event, so the two never disagree.
CREATE TABLE flag_sets (
    name        TEXT NOT NULL PRIMARY KEY,
    environment TEXT NOT NULL,
    version     INTEGER NOT NULL,
    document    TEXT,
    updated     INTEGER NOT NULL,
    updated_by  TEXT NOT NULL
) WITHOUT ROWID;
