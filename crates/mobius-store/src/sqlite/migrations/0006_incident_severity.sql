-- An incident's severity as its source said it (`sev1`…, or a label's value); NULL when none.
ALTER TABLE incidents ADD COLUMN severity TEXT;
