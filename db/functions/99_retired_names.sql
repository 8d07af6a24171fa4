-- Retired names, dropped on every deploy in the same transaction as the
-- function files before this one, so a bot call never finds the old body
-- calling a dropped helper, or a new body missing one (a migration runs in
-- a transaction of its own, before the function files). Naming rule (issue
-- #12): the API keeps plain names, every internal helper begins with
-- `jobmatch_`; these are the plain names the helpers had. No table, index,
-- view or trigger uses them, only older function bodies, replaced above.
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
-- before p_normalized (`jobmatch index tune --table user` searches through it)
DROP FUNCTION IF EXISTS jobmatch_nearest_users_sql(embedding_models, boolean, boolean, boolean);
