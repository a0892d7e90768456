-- Leases: work that must happen once across replicas (the alert loop, SLI recording,
-- repository polling, schedules, commit status delivery) is done by the holder of its lease.
-- A holder renews before `expires`; once it lapses anyone may take it. All instants in µs.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    acquired INTEGER NOT NULL,   -- when this holder took it (renewals keep it)
    expires  INTEGER NOT NULL
);
