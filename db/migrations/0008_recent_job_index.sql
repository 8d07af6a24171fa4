-- depends: 0007_keyword_candidates
-- The job index covers only the jobs match_jobs can return: those posted
-- since the window's start (less index_margin_days) when it was built. A
-- whole-table index spends most of its scan on jobs older than the window
-- and filters them out afterwards (five of six at a year of jobs). New jobs
-- enter the partial index as they are inserted; a weekly rebuild drops the
-- ones that left the window. NULL: index the whole table, as before.

ALTER TABLE jobmatch_settings
ADD COLUMN index_margin_days integer DEFAULT 7
CHECK (index_margin_days BETWEEN 0 AND 3650);

ALTER TABLE vector_index_builds
ADD COLUMN posted_since timestamptz;

-- vector_index_ddl returns the cutoff; record_vector_index_build stores it.
DROP FUNCTION IF EXISTS vector_index_ddl(
    text, integer, bigint, text, text, boolean, integer, integer
);
DROP FUNCTION IF EXISTS record_vector_index_build(
    text, text, text, boolean, integer, bigint, integer, integer
);
-- vector_index_drift reports the cutoff too.
DROP FUNCTION IF EXISTS vector_index_drift(
    double precision, integer, double precision, integer
);
