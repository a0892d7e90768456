-- Tokens made from now on are `mbx_<id>_<secret>`: looked up by id, their secret checked
-- against SHA-256(salt || token) with a random salt of their own. Tokens made before keep an
-- empty salt and are found by their unsalted hash, as they always were.
ALTER TABLE tokens ADD COLUMN salt TEXT NOT NULL DEFAULT '';
