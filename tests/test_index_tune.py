"""`jobmatch index tune`, drift detection (vector_index_drift + health) and
a smoke run of the performance benchmark. Pass/fail behaviour only: no
timings are asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.cli import jobmatch
from support.data import MODEL
from jobmatch.index_tune import Point, TuneError, format_result, recommend, tune

ROOT = Path(__file__).resolve().parents[1]


def load_jobs(conn, vecs, days, first_id=1):
    with conn.cursor().copy("COPY canonical_jobs (id, title, posted_date, job_embedding,"
                            " job_embedding_model, embedding_version) FROM STDIN") as cp:
        for i, (v, d) in enumerate(zip(vecs, days)):
            cp.write_row((first_id + i, f"Job {first_id + i}",
                          f"{np.datetime64('today') - int(d)}", v, MODEL, 1))


def load_seekers(conn, vecs):
    with conn.cursor().copy("COPY user_preferences (user_id, job_roles, user_embedding,"
                            " embedding_model, embedding_version) FROM STDIN") as cp:
        for i, v in enumerate(vecs):
            cp.write_row((i + 1, ["Role"], v, MODEL, 1))


def clustered(conn, n=12000, seekers=60, seed=42):
    """Like test_match_jobs' ivfflat data: 20 clusters, a year of posted
    dates (~1/6 in the 60-day window)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, 384)).astype(np.float32)
    vecs = centers[rng.integers(0, 20, n)] + 0.6 * rng.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    load_jobs(conn, vecs, rng.integers(0, 360, n))
    q = centers[rng.integers(0, 20, seekers)] + 0.6 * rng.standard_normal((seekers, 384))
    load_seekers(conn, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32))
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3 WHERE is_active")
    # ivfflat indexes over the whole table, so a small table has rows for many
    # lists (tests/test_recent_index.py tunes the window's index)
    conn.execute("UPDATE jobmatch_settings SET index_margin_days = NULL")
    conn.execute("UPDATE embedding_models SET index_method = 'ivfflat', index_halfvec = false"
                 " WHERE is_active")
    conn.execute("ANALYZE canonical_jobs")


def uniform(conn, n, first_id=1, seed=5):
    conn.execute("UPDATE embedding_models SET index_method = 'ivfflat', index_halfvec = false"
                 " WHERE is_active")
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, 384)).astype(np.float32)
    load_jobs(conn, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), np.zeros(n), first_id)


def match_ids(conn, uid):
    return [r[0] for r in conn.execute("SELECT job_id FROM match_jobs(%s, 10)"
                                       " WHERE match_method = 'semantic'", [uid])]


@pytest.mark.slow
def test_tune_recommends_a_setting_that_meets_the_target_and_apply_stores_it(conn):
    clustered(conn)
    assert conn.execute("SELECT method, lists FROM jobmatch_build_vector_index('job')"
                        ).fetchone() == ("ivfflat", 12)
    conn.execute("ANALYZE canonical_jobs")
    result = tune(conn, "job", sample=40, target=0.95, apply=True)
    rec = result.recommended
    assert result.knob == "ivfflat_probes" and result.index.lists == 12
    assert result.sample == 40 and result.index.window_rows > 1000
    assert rec is not None and rec.recall >= 0.95
    assert result.applied
    assert conn.execute("SELECT ivfflat_probes FROM embedding_models WHERE is_active"
                        ).fetchone()[0] == rec.setting
    # the sweep climbs until the target is met, then stops two steps later
    met = [p for p in result.points if p.recall >= 0.95]
    assert result.points.index(met[0]) >= len(result.points) - 3
    assert "recommendation: ivfflat_probes = " in format_result(result)
    # tune measured match_jobs' own search: through the index, at the stored
    # setting, match_jobs reaches the target on the same seekers
    seekers = [r[0] for r in conn.execute("SELECT user_id FROM user_preferences"
                                          " ORDER BY md5(user_id::text || '1') LIMIT 40")]
    with conn.transaction():
        conn.execute("SET LOCAL jobmatch.exact_search = on")
        exact = {u: match_ids(conn, u) for u in seekers}
    with conn.transaction():
        conn.execute("SET LOCAL enable_sort = off")  # walk the index, as tune does
        got = {u: match_ids(conn, u) for u in seekers}
    recall = np.mean([len(set(got[u]) & set(exact[u])) / len(exact[u])
                      for u in seekers if exact[u]])
    assert recall >= 0.95


@pytest.mark.slow
def test_tune_of_the_seekers_index_measures_match_users_own_search(conn):
    clustered(conn, n=2000, seekers=3000, seed=11)
    conn.execute("SELECT * FROM jobmatch_build_vector_index('user', NULL, 0)")
    conn.execute("ANALYZE user_preferences")
    (job_id,) = conn.execute("SELECT id FROM canonical_jobs WHERE posted_date > now() - '30 days'"
                             "::interval ORDER BY id LIMIT 1").fetchone()
    # the search is match_users' (jobmatch_nearest_users_sql): the same
    # seekers, nearest first, as match_users' candidates with no floor
    exact = [r[0] for r in conn.execute(
        "SELECT id FROM jobmatch_nearest_users(%s, 20, false, true)", [job_id])]
    assert len(exact) == 20
    assert exact == [r[0] for r in conn.execute(
        "SELECT u.user_id FROM user_preferences u, canonical_jobs j WHERE j.id = %s"
        " ORDER BY u.user_embedding <=> j.job_embedding, u.user_id LIMIT 20", [job_id])]
    result = tune(conn, "user", sample=20, settings=[1, 4, 32], candidate_lists=[8])
    assert result.index.table == "user_preferences" and result.sample == 20
    recalls = {p.setting: p.recall for p in result.points if not p.candidate}
    assert set(recalls) == {1, 4, 32} and recalls[32] >= 0.95
    assert result.recommended is not None and result.recommended.recall >= 0.95
    assert any(p.candidate and p.lists == 8 for p in result.points)
    assert result.index.planner_uses_index in (True, False)  # its EXPLAIN ran


@pytest.mark.slow
def test_tune_tries_candidate_lists_on_a_temporary_index(conn):
    clustered(conn, seed=3)
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job')")
    result = tune(conn, "job", sample=20, settings=[1, 2, 4], candidate_lists=[6, 24])
    assert {p.lists for p in result.points} == {12, 6, 24}
    assert [p.candidate for p in result.points if p.lists != 12] == [True] * 6
    assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%tune%'"
                        ).fetchone()[0] == 0
    assert conn.execute("SELECT ivfflat_probes FROM embedding_models WHERE is_active"
                        ).fetchone()[0] == 10  # not applied


def test_tune_without_an_index_or_seekers_explains(conn):
    clustered(conn, n=2000, seekers=0)
    with pytest.raises(TuneError, match="index rebuild"):
        tune(conn, "job")
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    with pytest.raises(TuneError, match="no seekers"):
        tune(conn, "job")


@pytest.mark.slow
def test_tune_cli_on_hnsw_applies_ef_search(conn, dsn):
    clustered(conn, n=3000, seekers=30, seed=7)
    conn.execute("UPDATE embedding_models SET index_method = 'hnsw', index_halfvec = true"
                 " WHERE is_active")
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    text = jobmatch(dsn, "index", "tune", "--sample", "30").stdout
    assert "hnsw halfvec" in text and "ef_search=" in text and "not applied" in text
    out = json.loads(jobmatch(dsn, "index", "tune", "--sample", "30", "--apply", "--json").stdout)
    assert out["knob"] == "hnsw_ef_search" and out["applied"]
    assert out["recommended"]["recall"] >= 0.95
    assert conn.execute("SELECT hnsw_ef_search FROM embedding_models WHERE is_active"
                        ).fetchone()[0] == out["recommended"]["setting"]
    refused = jobmatch(dsn, "index", "tune", "--table", "user", "--apply", check=False)
    assert refused.returncode == 2 and "--table job" in refused.stderr


def drift(conn, *args):
    cur = conn.execute("SELECT * FROM vector_index_drift(%s, %s)", list(args))
    return [dict(zip([c.name for c in cur.description], r)) for r in cur.fetchall()]


def test_drift_flags_an_index_built_on_far_fewer_rows(conn, dsn):
    uniform(conn, 3000)
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    (row,) = drift(conn, 2, 0)
    assert (row["index_name"], row["rows_at_build"], row["rows_now"], row["warning"]) == \
        ("canonical_jobs_job_embedding_ann", 3000, 3000, None)
    uniform(conn, 4000, first_id=3001, seed=6)
    (row,) = drift(conn, 2, 0)
    assert row["rows_now"] == 7000 and row["growth"] > 2
    assert "built on 3000 rows" in row["warning"] and "jobmatch index rebuild" in row["warning"]
    assert drift(conn, 3, 0)[0]["warning"] is None  # a DBA's own ratio
    out = jobmatch(dsn, "health").stdout
    assert "WARNING:" in out and "built on 3000 rows" in out
    js = json.loads(jobmatch(dsn, "health", "--json").stdout)
    assert js["vector_indexes"][0]["rows_now"] == 7000
    # rebuilt on today's rows: the warning goes
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    assert drift(conn, 2, 0)[0]["warning"] is None


@pytest.mark.slow
def test_drift_flags_a_sampled_recall_below_target(conn):
    uniform(conn, 12000)
    rng = np.random.default_rng(9)
    q = rng.standard_normal((10, 384)).astype(np.float32)
    load_seekers(conn, q / np.linalg.norm(q, axis=1, keepdims=True))
    conn.execute("UPDATE embedding_models SET similarity_threshold = -1 WHERE is_active")
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job')")
    conn.execute("ANALYZE canonical_jobs")
    conn.execute("SET enable_sort = off")  # match_jobs walks the index, as on a big table
    conn.execute("UPDATE embedding_models SET ivfflat_probes = 12 WHERE is_active")
    (row,) = drift(conn, 2, 10)
    assert row["sampled_recall"] == 1.0 and row["warning"] is None
    # one list of 12 with no structure in the data: most true neighbours are missed
    conn.execute("UPDATE embedding_models SET ivfflat_probes = 1, ivfflat_max_probes = 1"
                 " WHERE is_active")
    conn.execute("SET ivfflat.probes = 7")
    (row,) = drift(conn, 2, 10)
    assert row["sampled_recall"] < 0.95
    assert "sampled recall@" in row["warning"] and "index tune" in row["warning"]
    assert conn.execute("SHOW ivfflat.probes").fetchone()[0] == "7"  # knobs end with the call


def test_drift_reports_missing_and_other_model_indexes(conn):
    uniform(conn, 2000)
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    conn.execute("DROP INDEX canonical_jobs_job_embedding_ann")
    assert "no longer exists" in drift(conn, 2, 0)[0]["warning"]
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    conn.execute("SELECT set_embedding_model('text-embedding-3-small', 'openai', 1536, NULL, true)")
    assert "built for multilingual-e5-small" in drift(conn, 2, 0)[0]["warning"]


@pytest.mark.slow
def test_bench_perf_tiny_runs_end_to_end(dsn, tmp_path):
    from bench.perf_data import ONET_DIR
    if not (ONET_DIR / "Occupation Data.txt").exists():
        pytest.skip(f"O*NET data not found at {ONET_DIR} (set JOBMATCH_ONET_DIR)")
    env = {**os.environ, "DATABASE_URL": dsn, "JOBMATCH_BENCH_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "result"
    run = subprocess.run([sys.executable, "-m", "bench.perf", "--tier", "tiny", "--dims", "384",
                          "--clients", "1,2", "--queries", "30", "--duration", "0.3",
                          "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.with_suffix(".json").read_text())
    for key in ("tier", "dims", "data", "threshold", "methods", "sweeps", "index_builds",
                "sizes", "machine", "postgres", "postgres_settings", "load", "window_jobs"):
        assert key in result, key
    names = [m["method"] for m in result["methods"] if "[ann path]" not in m["method"]]
    assert names == ["exact", "plan (as written)", "ivfflat", "ivfflat halfvec", "hnsw",
                     "hnsw halfvec", "keyword fallback"]
    for m in result["methods"]:
        assert m["single"]["p50_ms"] > 0 and m["single"]["p99_ms"] >= m["single"]["p50_ms"]
        assert set(m["concurrency"]) == {"1", "2"}
        assert all(c["qps"] > 0 for c in m["concurrency"].values())
        if m["method"] != "keyword fallback":
            assert 0 <= m["recall_at_10"] <= 1
    assert result["methods"][0]["recall_at_10"] == 1.0
    assert result["machine"]["loadavg_start"] and result["threshold"]["threshold"]
    assert "canonical_jobs" in result["sizes"]
    header = out.with_suffix(".csv").read_text().splitlines()[0]
    assert "p50_ms" in header and "recall_at_10" in header and "qps_2" in header
    assert "exact" in run.stdout and "keyword fallback" in run.stdout


def test_window_estimate_and_when_match_jobs_should_walk_the_index(conn):
    uniform(conn, 3000)  # posted today
    rng = np.random.default_rng(1)
    old = rng.standard_normal((3000, 384)).astype(np.float32)
    load_jobs(conn, old / np.linalg.norm(old, axis=1, keepdims=True), np.full(3000, 200), 3001)
    conn.execute("ANALYZE canonical_jobs")
    start = conn.execute("SELECT (current_date - 60)::timestamptz").fetchone()[0]
    rows = conn.execute("SELECT jobmatch_window_rows(%s)", [start]).fetchone()[0]
    assert 2500 <= rows <= 3500
    walk = "SELECT jobmatch_vector_index_walk(m, %s) FROM active_embedding_model() AS m"
    assert conn.execute(walk, [start]).fetchone()[0]  # 3,000 > 800,000 / 384
    conn.execute("UPDATE embedding_models SET exact_scan_max_rows = 5000 WHERE is_active")
    assert not conn.execute(walk, [start]).fetchone()[0]


def test_recommend_prefers_the_smaller_setting_among_near_equal_latencies():
    # Timing noise must not pick ef_search 120 over 40 for a 7% faster sample:
    # a smaller setting does less work under load.
    points = [Point(10, 0.90, 1.0, 2, 1), Point(40, 0.96, 4.3, 8, 4),
              Point(120, 0.97, 4.0, 8, 4), Point(200, 0.99, 9.0, 20, 9)]
    assert recommend(points, 0.95).setting == 40
    assert recommend(points, 0.98).setting == 200
    assert recommend(points, 0.995) is None


@pytest.mark.slow
def test_drift_asks_for_an_index_on_either_side(conn):
    # match_jobs searches jobs, match_users (and the alerts) seekers: a big
    # table of either without an index scans exactly
    rng = np.random.default_rng(4)
    vecs = rng.standard_normal((10000, 384)).astype(np.float32)
    load_seekers(conn, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    rows = drift(conn, 2, 0)
    assert [(r["table_name"], r["warning"]) for r in rows if r["warning"]] == [(
        "user_preferences", "user_preferences has 10000 vectors and no vector index: match"
        " scans are exact; build one with `jobmatch index rebuild --table user`")]
    uniform(conn, 10000)
    assert {(r["table_name"], "no vector index" in r["warning"])
            for r in drift(conn, 2, 0) if r["warning"]} == {("canonical_jobs", True),
                                                             ("user_preferences", True)}
    conn.execute("SELECT * FROM jobmatch_build_vector_index('user', NULL, 0)")
    assert [r["table_name"] for r in drift(conn, 2, 0) if r["warning"]] == ["canonical_jobs"]


def test_tune_match_jobs_and_the_drift_check_share_one_search(conn):
    """jobmatch_nearest_jobs is match_jobs' candidate search: the seeker's window
    and hard filters hold in it, and match_jobs' semantic rows come from it."""
    rng = np.random.default_rng(7)
    v = rng.standard_normal((3, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    load_jobs(conn, [v[0], v[0], v[0]], [1, 2, 200])  # the last is outside the window
    conn.execute("UPDATE canonical_jobs SET ai_city = CASE id WHEN 2 THEN 'Kano' ELSE 'Lagos' END")
    load_seekers(conn, [v[0]])
    conn.execute("UPDATE user_preferences SET preferred_locations = ARRAY['Lagos']")
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3 WHERE is_active")
    for exact in (True, False):
        got = conn.execute("SELECT array_agg(id ORDER BY id) FROM jobmatch_nearest_jobs(1, 10,"
                           " false, %s)", [exact]).fetchone()[0]
        assert got == [1]
    assert [r[0] for r in conn.execute("SELECT job_id FROM match_jobs(1, 10)"
                                       " WHERE match_method = 'semantic'")] == [1]


def test_search_knobs_come_from_the_model_unless_a_sweep_overrides_one(conn):
    conn.execute("UPDATE embedding_models SET hnsw_ef_search = 77, ivfflat_probes = 9"
                 " WHERE is_active")
    with conn.transaction():
        conn.execute("SELECT jobmatch_set_search_knobs(m) FROM active_embedding_model() m")
        assert conn.execute("SELECT current_setting('hnsw.ef_search'),"
                            " current_setting('ivfflat.probes'),"
                            " current_setting('hnsw.iterative_scan')").fetchone() == \
            ("77", "9", "relaxed_order")
        conn.execute("SELECT jobmatch_set_search_knobs(m, 'hnsw', 300)"
                     " FROM active_embedding_model() m")
        assert conn.execute("SELECT current_setting('hnsw.ef_search'),"
                            " current_setting('ivfflat.probes')").fetchone() == ("300", "9")
