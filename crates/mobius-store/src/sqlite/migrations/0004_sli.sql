-- Per-minute SLI counters per service, environment and version, as the proxies recorded
-- them: requests, 5xx responses, and the latency histogram (counts per bucket of the proxy's
-- fixed bounds, as a JSON array). SLOs read sums over their windows.
CREATE TABLE sli_minutes (
    service     TEXT NOT NULL,
    environment TEXT NOT NULL,
    version     TEXT NOT NULL,
    minute      INTEGER NOT NULL,  -- unix seconds of the minute's start
    requests    INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    latency     TEXT NOT NULL,     -- JSON array of counts per histogram bucket
    PRIMARY KEY (service, environment, minute, version)
) WITHOUT ROWID;
