-- Encrypted secrets, by repository and (optionally) deployment environment: an AEAD nonce and
-- ciphertext per value, never the plaintext. `environment` is '' for a repository secret.
CREATE TABLE secrets (
    repository  TEXT NOT NULL,
    environment TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    updated     INTEGER NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (repository, environment, name)
) WITHOUT ROWID;
