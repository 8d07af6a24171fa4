-- depends: 0017_model_switch
-- Naming rule (issue #12): the API keeps plain names, every internal helper
-- begins with `jobmatch_`. db/functions now defines these helpers under
-- their jobmatch_ names; an upgraded database still holds the old ones
-- (no table, index, view or trigger uses them: only other functions' bodies,
-- which db/functions replaces right after this migration). Each signature a
-- deploy may have left is dropped (0004 and 0008 dropped the older ones):
-- vector_search_expression had three arguments before p_normalized.
DROP FUNCTION IF EXISTS user_profile_text(user_preferences);
DROP FUNCTION IF EXISTS job_profile_text(canonical_jobs);
DROP FUNCTION IF EXISTS job_match_reasons(user_preferences, canonical_jobs, double precision);
DROP FUNCTION IF EXISTS user_keyword_query(user_preferences);
DROP FUNCTION IF EXISTS user_role_query(user_preferences);
DROP FUNCTION IF EXISTS ivfflat_lists_for(bigint);
DROP FUNCTION IF EXISTS vector_index_walk(embedding_models, timestamptz);
DROP FUNCTION IF EXISTS vector_search_expression(text, integer, boolean);
DROP FUNCTION IF EXISTS vector_search_expression(text, integer, boolean, boolean);
DROP FUNCTION IF EXISTS vector_index_ddl(
    text, integer, bigint, text, text, boolean, integer, integer
);
DROP FUNCTION IF EXISTS build_vector_index(text, integer, bigint, text, boolean);
DROP FUNCTION IF EXISTS record_vector_index_build(
    text, text, text, boolean, integer, bigint, integer, integer, timestamptz
);
