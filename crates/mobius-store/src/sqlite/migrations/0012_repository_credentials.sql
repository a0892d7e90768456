-- The stored secret (of the repository's own scope) holding what git authenticates to a
-- repository's remote with: an HTTPS token or an SSH private key. Only the secret's name is
-- kept here, never its value; NULL for a clone on this machine or an anonymous remote.
ALTER TABLE repositories ADD COLUMN credentials TEXT;
