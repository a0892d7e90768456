-- SQLite's migration 0020: the flag set a `flags` token evaluates.
ALTER TABLE tokens ADD COLUMN flag_set TEXT;
