-- Catalog version 4: the columns (names and types) of each source as the
-- stream table's data was last built on. A source altered while trickled
-- was not running (ALTER COLUMN ... TYPE rewrites rows without a change in
-- the stream) is found at the next start by comparing them with the live
-- catalog. NULL for dependencies recorded before this version (filled at
-- the next start).
ALTER TABLE pgtrickle.dependencies
  ADD COLUMN source_columns text;
