-- next_job_alerts(limit): what the bot pushes. The seekers each new job
-- fits (match_users' rules: 48_match_users.sql), never a pair twice, at
-- most alerts_per_user_per_day alerts to a seeker in any 24 hours, at most
-- alerts_per_job seekers per job, none to a seeker who turned alerts off.
-- Returns the alerts it marks sent, in the same transaction.

-- New jobs: a vector of the active model, posted in the window and in the
-- last alerts_max_age_days, not yet dealt with by the feed (alerted_jobs);
-- oldest first. A job without its vector yet waits for it.
CREATE OR REPLACE FUNCTION jobmatch_alert_jobs(
    p_model embedding_models, s jobmatch_settings, p_at timestamptz, p_count integer
)
RETURNS bigint[]
LANGUAGE sql STABLE
AS $$
    SELECT array_agg(c.id ORDER BY c.posted_date, c.id)
    FROM (
        SELECT j.id, j.posted_date
        FROM canonical_jobs AS j
        WHERE j.posted_date >= greatest(current_date - s.match_window_days,
                                        p_at - make_interval(days => s.alerts_max_age_days))
          AND j.posted_date <= jobmatch_latest_posted()
          AND j.job_embedding_model = p_model.model AND j.job_embedding IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM alerted_jobs AS a WHERE a.job_id = j.id)
        ORDER BY j.posted_date, j.id
        LIMIT p_count
    ) AS c
$$;

CREATE OR REPLACE FUNCTION next_job_alerts(p_limit integer DEFAULT 1000)
RETURNS TABLE (user_id bigint, job_id bigint, match_score numeric, match_reasons text[])
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
SET "ivfflat.iterative_scan" = 'relaxed_order'
SET "hnsw.iterative_scan" = 'relaxed_order'
SET "ivfflat.probes" = 10
SET "ivfflat.max_probes" = 32768
SET "hnsw.ef_search" = 40
SET "hnsw.max_scan_tuples" = 20000
AS $$
DECLARE
    s jobmatch_settings;
    m embedding_models;
    v_limit integer;
    v_at timestamptz := now();
    v_start timestamptz;
    v_since timestamptz;
    v_batch bigint[];
    r record;
    v_jobs bigint[];
    v_users bigint[];
    v_scores numeric[];
    v_sims double precision[];
    v_job_used integer[];
    v_user_used integer[];
    v_unfinished bigint[];
    v_sent integer := 0;
    v_taken integer;
    v_got integer;
BEGIN
    IF p_limit IS NULL THEN
        RAISE EXCEPTION 'next_job_alerts: limit must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_limit < 1 THEN
        RAISE EXCEPTION 'next_job_alerts: limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_limit := least(p_limit, 10000);
    SELECT * INTO s FROM jobmatch_settings;
    m := active_embedding_model();
    IF m.model IS NULL OR s.alerts_per_job = 0 OR s.alerts_per_user_per_day = 0 THEN
        RETURN;
    END IF;
    -- One feed at a time: a second caller waits here, then (each statement
    -- below taking a new snapshot) sees what the first one sent. The
    -- primary key of job_alerts would refuse a pair twice regardless.
    PERFORM pg_advisory_xact_lock(7243061459288470014);
    v_start := current_date - s.match_window_days;
    v_since := v_at - interval '1 day';
    LOOP
        EXIT WHEN v_sent >= v_limit;
        -- a batch of new jobs, allocated together: about as many as the
        -- alerts still wanted need, at least 50, at most 1,000
        v_batch := jobmatch_alert_jobs(
            m, s, v_at,
            least(1000, greatest(50, ceil((v_limit - v_sent)::numeric / s.alerts_per_job)))::integer);
        EXIT WHEN v_batch IS NULL;
        v_jobs := '{}';
        v_users := '{}';
        v_scores := '{}';
        v_sims := '{}';
        v_job_used := '{}';
        v_user_used := '{}';
        v_unfinished := '{}';
        v_taken := 0;
        -- Every candidate pair of the batch that is relevant (one reference
        -- per seeker), best first; equal match_score: the job pushed to
        -- fewer seekers so far, then the seeker alerted less today. Taken
        -- greedily within both caps.
        FOR r IN
            WITH jobs AS (
                SELECT b.ord::integer AS ord, x.j,
                       (SELECT count(*) FROM job_alerts AS a WHERE a.job_id = b.id) AS sent
                FROM unnest(v_batch) WITH ORDINALITY AS b (id, ord)
                CROSS JOIN LATERAL (SELECT jobmatch_matchable_job(b.id, m, s) AS j) AS x
            ), cand AS MATERIALIZED (
                SELECT b.ord, (b.j).id AS job_id, (b.j).ai_job_function AS job_function,
                       b.sent AS job_sent, c.user_id AS seeker, c.similarity, c.score,
                       c.categories
                FROM jobs AS b
                CROSS JOIN LATERAL jobmatch_user_candidates(
                    b.j, m, s, greatest(2 * (s.alerts_per_job - b.sent), s.match_candidates)::integer,
                    true, v_since, v_at) AS c
                WHERE (b.j).id IS NOT NULL AND b.sent < s.alerts_per_job
            ), refs AS (
                SELECT u.user_id AS seeker,
                       jobmatch_seeker_reference(u, m, s, v_start, v_at) AS reference
                FROM user_preferences AS u
                WHERE u.user_id IN (
                    SELECT c.seeker FROM cand AS c
                    WHERE jobmatch_needs_reference(m.relevance_margin, c.job_function,
                                                   c.categories))
            )
            SELECT c.ord, c.job_id, c.seeker, c.similarity, c.job_sent,
                   jobmatch_score_percent(c.score, s) AS score,
                   dense_rank() OVER (ORDER BY c.seeker)::integer AS seeker_ord,
                   (SELECT count(*) FROM job_alerts AS a
                    WHERE a.user_id = c.seeker AND a.sent_at > v_since) AS seeker_sent
            FROM cand AS c
            LEFT JOIN refs AS f ON f.seeker = c.seeker
            WHERE jobmatch_relevant(c.score, f.reference, m.relevance_margin, c.job_function,
                                    c.categories)
            ORDER BY jobmatch_score_percent(c.score, s) DESC, c.job_sent, seeker_sent,
                     c.job_id, c.seeker
        LOOP
            IF v_sent + v_taken >= v_limit THEN
                -- the limit is reached: this job's remaining seekers wait
                -- for the next call
                v_unfinished := array_append(v_unfinished, r.job_id);
                CONTINUE;
            END IF;
            IF r.job_sent + coalesce(v_job_used[r.ord], 0) < s.alerts_per_job
               AND r.seeker_sent + coalesce(v_user_used[r.seeker_ord], 0)
                   < s.alerts_per_user_per_day THEN
                v_jobs := array_append(v_jobs, r.job_id);
                v_users := array_append(v_users, r.seeker);
                v_scores := array_append(v_scores, r.score);
                v_sims := array_append(v_sims, r.similarity);
                v_job_used[r.ord] := coalesce(v_job_used[r.ord], 0) + 1;
                v_user_used[r.seeker_ord] := coalesce(v_user_used[r.seeker_ord], 0) + 1;
                v_taken := v_taken + 1;
            END IF;
        END LOOP;
        RETURN QUERY
        WITH sent AS (
            INSERT INTO job_alerts AS a (job_id, user_id, match_score, sent_at)
            SELECT x.job_id, x.seeker, x.score, v_at
            FROM unnest(v_jobs, v_users, v_scores) AS x (job_id, seeker, score)
            ON CONFLICT DO NOTHING
            RETURNING a.job_id, a.user_id, a.match_score
        )
        SELECT x.user_id, x.job_id, x.match_score, jobmatch_job_match_reasons(u, j, y.similarity)
        FROM sent AS x
        INNER JOIN unnest(v_jobs, v_users, v_sims) AS y (job_id, seeker, similarity)
            ON y.job_id = x.job_id AND y.seeker = x.user_id
        INNER JOIN user_preferences AS u ON u.user_id = x.user_id
        INNER JOIN canonical_jobs AS j ON j.id = x.job_id
        ORDER BY x.job_id, x.match_score DESC, x.user_id;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        v_sent := v_sent + v_got;
        INSERT INTO alerted_jobs AS a (job_id, alerted_at)
        SELECT b.id, v_at FROM unnest(v_batch) AS b (id)
        WHERE b.id <> ALL (v_unfinished)
        ON CONFLICT DO NOTHING;
        EXIT WHEN cardinality(v_unfinished) > 0;
    END LOOP;
END
$$;
