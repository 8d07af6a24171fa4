-- What embedding costs: spend per day in tokens and dollars, and the daily
-- budget the worker checks before each batch.

-- Spend per day and model, in tokens and dollars (embedding_models' price;
-- Batch API tokens at the Batch price), with what the content cache saved.
CREATE OR REPLACE VIEW embedding_spend AS
SELECT
    u.day,
    u.model,
    u.requests,
    u.inputs,
    u.tokens,
    u.cached_inputs,
    u.cached_tokens,
    u.skipped_inputs,
    u.batch_inputs,
    u.batch_tokens,
    round(
        (
            u.tokens * m.usd_per_million_tokens
            + u.batch_tokens * m.batch_usd_per_million_tokens
        ) / 1e6,
        10
    ) AS usd,
    round(u.cached_tokens * m.usd_per_million_tokens / 1e6, 10) AS usd_saved
FROM embedding_usage AS u
LEFT JOIN embedding_models AS m ON u.model = m.model;

-- Has today's spend for model p_model (NULL: every model together, what
-- the worker asks: the active model's and a switch's target's) reached a
-- daily budget (tokens, dollars; NULL: no such budget)? The worker asks
-- before each batch: the budget is shared by every worker.
CREATE OR REPLACE FUNCTION embedding_budget_state(
    p_model text, p_token_budget bigint DEFAULT NULL, p_usd_budget numeric DEFAULT NULL
)
RETURNS TABLE (tokens_today bigint, usd_today numeric, reached boolean)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT t.tokens, t.usd,
           coalesce(t.tokens >= p_token_budget, false) OR coalesce(t.usd >= p_usd_budget, false)
    FROM (
        SELECT coalesce(sum(s.tokens), 0)::bigint AS tokens,
               coalesce(sum(s.usd), 0) AS usd
        FROM embedding_spend AS s
        WHERE s.day = current_date AND (p_model IS NULL OR s.model = p_model)
    ) AS t
$$;
