-- depends: 0015_job_retention
-- Vectors cheap to read (issue #17). A row holds two vectors (profile and
-- role) and its texts; past 2 kB PostgreSQL moved the largest values, the
-- vectors, out of line, so match_jobs' scan of the window fetched every
-- vector from the TOAST table (a 384-d window of 668 jobs: 2,600 buffer
-- hits, 6.9 ms for a bare ORDER BY). The searched vectors stay in the row
-- (STORAGE MAIN: moved out only if the row cannot fit a page otherwise),
-- and the other values are compressed or moved out only past 8 kB
-- (toast_tuple_target), so at 384-d the role vector stays in line too; at
-- 1536-d it is the one moved out. Rows already stored keep their layout
-- until rewritten (the next write-back, or VACUUM FULL: docs/dba.md).
ALTER TABLE canonical_jobs ALTER COLUMN job_embedding SET STORAGE MAIN;
ALTER TABLE canonical_jobs SET (toast_tuple_target = 8160);
ALTER TABLE user_preferences ALTER COLUMN user_embedding SET STORAGE MAIN;
ALTER TABLE user_preferences SET (toast_tuple_target = 8160);

-- jobmatch_scored_jobs_sql lost its p_exact (the exact pass is now a static
-- query in jobmatch_scored_jobs, planned once per session).
DROP FUNCTION IF EXISTS jobmatch_scored_jobs_sql(embedding_models, boolean);
