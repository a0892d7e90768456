-- Events by when they happened, for time-bounded reads of the log (a post-mortem's timeline)
-- that would otherwise scan it whole. Timestamps mostly arrive in order, so the index grows at
-- its end.
CREATE INDEX events_ts ON events (ts);
