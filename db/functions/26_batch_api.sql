-- What `jobmatch backfill --batch-api` records of OpenAI Batch API batches
-- (worker/jobmatch/batch_api.py): a batch and the rows it carries when it is
-- submitted, its end, and the tokens it was billed (at the Batch price).
-- Vectors come back through complete_embeddings, with its hash check.

CREATE OR REPLACE FUNCTION record_api_batch(
    p_batch_id text,
    p_worker text,
    p_model text,
    p_input_file_id text,
    p_custom_ids text[],
    p_entity_types text[],
    p_entity_ids bigint[],
    p_text_hashes uuid[]
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF p_batch_id IS NULL OR p_worker IS NULL OR p_model IS NULL
       OR cardinality(p_custom_ids) IS DISTINCT FROM cardinality(p_entity_ids)
       OR cardinality(p_entity_ids) IS DISTINCT FROM cardinality(p_entity_types)
       OR cardinality(p_entity_ids) IS DISTINCT FROM cardinality(p_text_hashes) THEN
        RAISE EXCEPTION 'record_api_batch: a batch id, worker, model and equal-length arrays are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO embedding_api_batches (batch_id, worker, model, input_file_id, requests)
    VALUES (p_batch_id, p_worker, p_model, p_input_file_id, cardinality(p_custom_ids));
    INSERT INTO embedding_api_batch_rows (batch_id, custom_id, entity_type, entity_id, text_hash)
    SELECT p_batch_id, r.custom_id, r.entity_type, r.entity_id, r.text_hash
    FROM unnest(p_custom_ids, p_entity_types, p_entity_ids, p_text_hashes)
        AS r (custom_id, entity_type, entity_id, text_hash);
END
$$;

-- A batch's end: 'applied' (its results written), or 'failed', 'expired',
-- 'cancelled' (its rows' leases released, no attempt charged: the provider,
-- not the rows, failed; a batch's worker name holds rows of one queue, the
-- active model's or a switch's target's, and both are released).
CREATE OR REPLACE FUNCTION finish_api_batch(
    p_batch_id text, p_status text, p_error text DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    b embedding_api_batches;
BEGIN
    UPDATE embedding_api_batches AS a
    SET status = p_status, finished_at = now(), last_error = left(p_error, 2000)
    WHERE a.batch_id = p_batch_id
    RETURNING a.* INTO b;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'finish_api_batch: no batch %', p_batch_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_status <> 'applied' THEN
        PERFORM release_embeddings(b.worker);
        PERFORM release_target_embeddings(b.worker);
    END IF;
END
$$;

-- Tokens a batch was billed, counted apart: they cost the Batch price.
CREATE OR REPLACE FUNCTION record_batch_usage(p_model text, p_inputs bigint, p_tokens bigint)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF p_model IS NULL OR p_inputs IS NULL OR p_inputs < 0 OR coalesce(p_tokens, 0) < 0 THEN
        RAISE EXCEPTION 'record_batch_usage: a model and non-negative counts are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO embedding_usage AS u (day, model, batch_inputs, batch_tokens)
    VALUES (current_date, p_model, p_inputs, coalesce(p_tokens, 0))
    ON CONFLICT (day, model) DO UPDATE
        SET batch_inputs = u.batch_inputs + excluded.batch_inputs,
            batch_tokens = u.batch_tokens + excluded.batch_tokens;
END
$$;
