-- Protection rules of pipeline environments (what a workflow job's `environment:` names), kept
-- per repository on the server, as GitHub keeps them in repository settings, so that a change
-- to a workflow cannot weaken them. `reviewers` and `branches` are JSON arrays of strings.
CREATE TABLE environments (
    repository     TEXT NOT NULL,
    name           TEXT NOT NULL,
    require_review INTEGER NOT NULL,
    reviewers      TEXT NOT NULL,
    branches       TEXT NOT NULL,
    updated        INTEGER NOT NULL,
    updated_by     TEXT NOT NULL,
    PRIMARY KEY (repository, name)
) WITHOUT ROWID;

-- Short-lived tokens: a hard expiry (microseconds since the epoch; NULL: never), and a
-- restriction to one repository's runs (a job's run token; NULL: unrestricted).
ALTER TABLE tokens ADD COLUMN expires INTEGER;
ALTER TABLE tokens ADD COLUMN repository TEXT;
ALTER TABLE tokens ADD COLUMN run_id INTEGER;
