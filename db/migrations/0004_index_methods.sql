-- depends: 0003_keyword_index
-- Index method and precision become per-model DBA choices: ivfflat (the
-- default; DBAs tune `lists` and `probes`) or HNSW, on full-precision
-- vectors or on halfvec (half the memory). Iterative scans get bounds.

ALTER TABLE embedding_models
ADD COLUMN index_method text NOT NULL DEFAULT 'ivfflat'
CHECK (index_method IN ('ivfflat', 'hnsw')),
ADD COLUMN index_halfvec boolean NOT NULL DEFAULT false,
ADD COLUMN ivfflat_max_probes integer CHECK (ivfflat_max_probes >= 1),
ADD COLUMN hnsw_ef_search integer NOT NULL DEFAULT 40
CHECK (hnsw_ef_search BETWEEN 1 AND 1000),
ADD COLUMN hnsw_max_scan_tuples integer NOT NULL DEFAULT 20000
CHECK (hnsw_max_scan_tuples >= 1);

ALTER TABLE vector_index_builds
ADD COLUMN halfvec boolean NOT NULL DEFAULT false,
ADD COLUMN hnsw_m integer,
ADD COLUMN hnsw_ef_construction integer;

-- The signature gains the method and precision; the old one goes.
DROP FUNCTION IF EXISTS vector_index_ddl(text, integer, bigint, text);
DROP FUNCTION IF EXISTS record_vector_index_build(text, text, integer, bigint);
DROP FUNCTION IF EXISTS build_vector_index(text, integer, bigint);
