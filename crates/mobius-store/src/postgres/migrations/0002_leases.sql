-- SQLite's migration 0015: a lease per piece of work that must happen once across replicas.
CREATE TABLE leases (
    name     TEXT COLLATE "C" PRIMARY KEY,
    holder   TEXT COLLATE "C" NOT NULL,
    acquired BIGINT NOT NULL,   -- when this holder took it (renewals keep it)
    expires  BIGINT NOT NULL
);
