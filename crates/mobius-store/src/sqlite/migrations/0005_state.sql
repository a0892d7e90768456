-- Small documents a server component keeps across restarts (the alerter's deduplicated alert
-- states, say), one JSON value per key, replaced whole.
CREATE TABLE server_state (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    updated INTEGER NOT NULL  -- microseconds since the Unix epoch
) WITHOUT ROWID;
