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
