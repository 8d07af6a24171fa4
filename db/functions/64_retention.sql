-- Retention (`jobmatch prune`): jobs posted more than job_retention_days
-- ago leave the table, their queue rows and dead letters with them (the
-- delete trigger of 30_triggers.sql). Undated jobs are never pruned: no
-- date says they are old (health counts them).

-- What pruning would do, or (p_apply) does for at most p_limit of the
-- oldest such jobs: a caller loops until `deleted` < p_limit, each call its
-- own transaction, so locks stay short. Raises if no retention is set.
CREATE OR REPLACE FUNCTION prune_jobs(p_apply boolean DEFAULT FALSE, p_limit integer DEFAULT 10000)
RETURNS TABLE (cutoff timestamptz, jobs_to_prune bigint, queue_rows bigint, deleted bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v_days integer;
BEGIN
    IF p_apply IS NULL OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'prune_jobs: apply must not be NULL and limit must be at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.job_retention_days INTO v_days FROM jobmatch_settings AS s;
    IF v_days IS NULL THEN
        RAISE EXCEPTION 'no job retention is set: nothing is pruned'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'UPDATE jobmatch_settings SET job_retention_days = 180 '
                         '(at least match_window_days)';
    END IF;
    cutoff := current_date - v_days;
    SELECT count(*) INTO jobs_to_prune FROM canonical_jobs AS j WHERE j.posted_date < cutoff;
    SELECT count(*) INTO queue_rows
    FROM embedding_queue AS q
    INNER JOIN canonical_jobs AS j ON q.entity_type = 'job' AND q.entity_id = j.id
    WHERE j.posted_date < cutoff;
    deleted := 0;
    IF p_apply THEN
        WITH gone AS (
            DELETE FROM canonical_jobs AS j
            WHERE j.id IN (SELECT o.id FROM canonical_jobs AS o
                           WHERE o.posted_date < cutoff
                           ORDER BY o.posted_date, o.id
                           LIMIT p_limit)
            RETURNING j.id
        )
        SELECT count(*) INTO deleted FROM gone;
    END IF;
    RETURN NEXT;
END
$$;
