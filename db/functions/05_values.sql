-- What jobmatch accepts as a value from the bot's tables (issue #11).

-- A pay amount as jobmatch reads it: NULL (unset) unless it is a finite,
-- positive amount below 10^15. numeric columns accept 'NaN', 'Infinity' and
-- amounts of 100,000 digits; no salary is any of those, nor negative, nor
-- zero (unset in the original plan). Every reader of a salary (the hard pay
-- filter, match reasons, profile texts, what match_jobs returns) goes through
-- it. Inlined by the planner: it runs for every candidate row.
CREATE OR REPLACE FUNCTION jobmatch_pay(amount numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN amount > 0 AND amount < 1e15 THEN amount END
$$;

-- The newest posted_date a job may have to be matched: a job dated more than
-- a day ahead (a typo, a wrong time zone or year) would otherwise stay first
-- in the keyword fallback and never leave the window. Such jobs are never
-- matched and `jobmatch health` counts them; so are jobs with no posted_date.
-- A window is `posted_date >= start AND posted_date <= jobmatch_latest_posted()`,
-- a range the posted_date index serves.
CREATE OR REPLACE FUNCTION jobmatch_latest_posted()
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT now() + interval '1 day'
$$;
