-- Console sessions: a token exchanged at sign-in for a cookie. Only SHA-256 of the cookie's
-- value is kept; `token_id` is the token it was opened with, so revoking that token ends the
-- session (the token is looked up on every request). `csrf` is the session's form token.
CREATE TABLE sessions (
    id_hash  TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    csrf     TEXT NOT NULL,
    created  INTEGER NOT NULL,
    expires  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expires ON sessions (expires);
