-- depends: 0006_exact_scan_rows
-- How many jobs the keyword fallback ranks. It used to rank every job in
-- the window sharing a word with the seeker, which on a big table is most
-- of the window (500 ms at 600,000 jobs); it now ranks only the newest
-- keyword_candidates of them that fit the seeker's stated constraints, so
-- its cost no longer grows with the table.

ALTER TABLE jobmatch_settings
ADD COLUMN keyword_candidates integer NOT NULL DEFAULT 200
CHECK (keyword_candidates BETWEEN 1 AND 10000);
