-- depends: 0008_recent_job_index
-- HNSW on halfvec becomes the default index, as measured over the window's
-- jobs (README "match_jobs speed"): the fastest at every size, no retraining
-- as rows arrive, no minimum row count. Installs that have built an index
-- keep what they chose; models added later get the new default.

ALTER TABLE embedding_models
ALTER COLUMN index_method SET DEFAULT 'hnsw',
ALTER COLUMN index_halfvec SET DEFAULT true;

UPDATE embedding_models
SET index_method = 'hnsw', index_halfvec = true
WHERE NOT EXISTS (SELECT 1 FROM vector_index_builds);
