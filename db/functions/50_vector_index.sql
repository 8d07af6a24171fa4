-- ivfflat indexes, one per table for the active model: a partial expression
-- index, because the columns hold vectors of any dimension and only the
-- active model's are ever compared.

-- lists = rows / 1000 up to 1M rows, sqrt(rows) above (pgvector's advice).
CREATE OR REPLACE FUNCTION ivfflat_lists_for(p_rows bigint)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_rows > 1000000 THEN ceil(sqrt(p_rows))::integer
                ELSE greatest(1, (p_rows / 1000)::integer) END
$$;

-- The DDL for a table's vector index, sized from the rows that have a
-- vector of the active model. Refuses when there is too little data: an
-- ivfflat index trained on a few rows clusters badly and stays bad.
-- The CLI runs this DDL CONCURRENTLY; build_vector_index runs it in place.
CREATE OR REPLACE FUNCTION vector_index_ddl(
    p_entity_type text,
    p_lists integer DEFAULT NULL,
    p_min_rows bigint DEFAULT 10000,
    p_index_name text DEFAULT NULL
)
RETURNS TABLE (index_name text, table_name text, lists integer, row_count bigint, ddl text)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_model embedding_models := active_embedding_model();
    v_table text;
    v_column text;
    v_model_column text;
BEGIN
    IF v_model.model IS NULL THEN
        RAISE EXCEPTION 'no embedding model configured; run `jobmatch migrate` first'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF p_entity_type = 'job' THEN
        v_table := 'canonical_jobs'; v_column := 'job_embedding';
        v_model_column := 'job_embedding_model';
    ELSIF p_entity_type = 'user' THEN
        v_table := 'user_preferences'; v_column := 'user_embedding';
        v_model_column := 'embedding_model';
    ELSE
        RAISE EXCEPTION 'entity type must be ''job'' or ''user'', got %', p_entity_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_lists IS NOT NULL AND p_lists < 1 THEN
        RAISE EXCEPTION 'lists must be at least 1, got %', p_lists
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT count(*) FROM %I WHERE %I = $1 AND %I IS NOT NULL',
                   v_table, v_model_column, v_column)
        INTO row_count USING v_model.model;
    lists := coalesce(p_lists, ivfflat_lists_for(row_count));
    IF row_count < greatest(p_min_rows, lists::bigint * 39) THEN
        RAISE EXCEPTION 'refusing to build an ivfflat index on % with % embedded rows (need at least %)',
            v_table, row_count, greatest(p_min_rows, lists::bigint * 39)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Below that an exact scan is as fast; build once the vectors are filled.';
    END IF;
    table_name := v_table;
    index_name := coalesce(p_index_name, v_table || '_' || v_column || '_ivfflat');
    ddl := format('CREATE INDEX %I ON %I USING ivfflat ((%I::vector(%s)) vector_cosine_ops) '
                  'WITH (lists = %s) WHERE %I = %L',
                  index_name, v_table, v_column, v_model.dimensions, lists,
                  v_model_column, v_model.model);
    RETURN NEXT;
END
$$;

-- Records a finished build so `jobmatch health` can report drift.
CREATE OR REPLACE FUNCTION record_vector_index_build(
    p_index_name text, p_table_name text, p_lists integer, p_rows bigint
)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO vector_index_builds AS b (index_name, table_name, model, method, lists, rows_at_build)
    VALUES (p_index_name, p_table_name, (active_embedding_model()).model, 'ivfflat', p_lists, p_rows)
    ON CONFLICT (index_name) DO UPDATE
        SET table_name = excluded.table_name, model = excluded.model,
            method = excluded.method, lists = excluded.lists,
            rows_at_build = excluded.rows_at_build, built_at = now()
$$;

-- Builds (or rebuilds) the index inside the current transaction. Blocks
-- writes to the table while it runs; `jobmatch index rebuild` builds
-- concurrently instead.
CREATE OR REPLACE FUNCTION build_vector_index(
    p_entity_type text, p_lists integer DEFAULT NULL, p_min_rows bigint DEFAULT 10000
)
RETURNS TABLE (index_name text, lists integer, row_count bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    d record;
BEGIN
    SELECT * INTO d FROM vector_index_ddl(p_entity_type, p_lists, p_min_rows);
    EXECUTE format('DROP INDEX IF EXISTS %I', d.index_name);
    EXECUTE d.ddl;
    PERFORM record_vector_index_build(d.index_name, d.table_name, d.lists, d.row_count);
    index_name := d.index_name; lists := d.lists; row_count := d.row_count;
    RETURN NEXT;
END
$$;
