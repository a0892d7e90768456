-- A `flags` token (a client key for OFREP) evaluates one flag set: its name.
ALTER TABLE tokens ADD COLUMN flag_set TEXT;
