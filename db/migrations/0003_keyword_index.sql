-- depends: 0002_embeddings
-- Full-text document of a job for the keyword fallback. It lives in a
-- migration, not in db/functions, because an index is built on it: changing
-- its body would silently corrupt the index, so a change is a new function
-- (and a new index) in a new migration.

CREATE FUNCTION jobmatch_job_document(
    title text,
    job_titles text[],
    required_skills text[],
    preferred_skills text[]
) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- concat_ws skips NULLs; a NULL part would otherwise null the document
    SELECT setweight(to_tsvector('english'::regconfig,
               concat_ws(' ', title, array_to_string(job_titles, ' '))), 'A')
        || setweight(to_tsvector('english'::regconfig,
               concat_ws(' ', array_to_string(required_skills, ' '))), 'B')
        || setweight(to_tsvector('english'::regconfig,
               concat_ws(' ', array_to_string(preferred_skills, ' '))), 'C')
$$;

CREATE INDEX canonical_jobs_keyword_idx ON canonical_jobs USING gin (
    jobmatch_job_document(
        title, ai_job_titles, ai_required_skills, ai_preferred_skills
    )
);
