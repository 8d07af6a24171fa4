-- depends: 0010_write_back_safety
-- The keyword document of a job, bounded (issue #11): a title of 150,000
-- distinct words made the application's own INSERT fail ("string is too
-- long for tsvector", 1 MB of lexemes). Now the title counts up to 1,000
-- characters and each list its first 50 items, 300 characters each, so a
-- document holds at most ~47,000 characters of words, whatever the row holds.
-- A row within those bounds gets exactly the document it had.
--
-- Since 0005 the document is a stored generated column and the only index
-- on it (canonical_jobs_document_idx) indexes the stored values, not the
-- expression, so replacing the body in place is safe: no table rewrite and
-- no lock beyond the rows below. The UPDATE recomputes the stored document
-- of the rows beyond the bounds, so every row's document is the function's.

-- Self-contained (no helper function in its body): pg_dump records no
-- dependency on what a SQL function's body calls, and a restore creates the
-- table, computing this expression, before such a helper would exist.
CREATE OR REPLACE FUNCTION jobmatch_job_document(
    title text,
    job_titles text[],
    required_skills text[],
    preferred_skills text[]
) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- concat_ws skips NULLs; a NULL part would otherwise null the document.
    -- Each list: its first 50 items, 300 characters each (NULLs skipped, as
    -- array_to_string does).
    SELECT setweight(to_tsvector('english'::regconfig, concat_ws(' ', left(title, 1000),
               (SELECT string_agg(left(u.item, 300), ' ' ORDER BY u.ord)
                FROM unnest(job_titles) WITH ORDINALITY AS u (item, ord)
                WHERE u.ord <= 50))), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(
               (SELECT string_agg(left(u.item, 300), ' ' ORDER BY u.ord)
                FROM unnest(required_skills) WITH ORDINALITY AS u (item, ord)
                WHERE u.ord <= 50), '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(
               (SELECT string_agg(left(u.item, 300), ' ' ORDER BY u.ord)
                FROM unnest(preferred_skills) WITH ORDINALITY AS u (item, ord)
                WHERE u.ord <= 50), '')), 'C')
$$;

-- Only rows beyond the bounds can differ; an UPDATE recomputes a stored
-- generated column.
UPDATE canonical_jobs
SET title = title
WHERE
    length(title) > 1000
    OR cardinality(ai_job_titles) > 50
    OR cardinality(ai_required_skills) > 50
    OR cardinality(ai_preferred_skills) > 50
    OR EXISTS (
        SELECT 1
        FROM unnest(ai_job_titles || ai_required_skills || ai_preferred_skills) AS item
        WHERE length(item) > 300
    );
