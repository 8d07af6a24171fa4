-- depends: 0005_ranking
-- How big the match window must be before match_jobs walks the vector
-- index instead of leaving the choice to the planner. The planner does not
-- cost the detoasting and the distance per row of an exact scan, so with
-- 1536-d vectors it keeps scanning 16,000 rows exactly (~65 ms) where the
-- index answers in 2-4 ms (bench/README.md). NULL: 800,000 / dimensions
-- rows (2,083 at 384-d, 520 at 1536-d), where the two cost about the same.

ALTER TABLE embedding_models
ADD COLUMN exact_scan_max_rows integer CHECK (exact_scan_max_rows >= 0);
