"""The job index holds the jobs match_jobs can return: those posted since the
window's start less jobmatch_settings.index_margin_days, when it was built."""

import datetime as dt

import numpy as np
import pytest

from support.data import clustered_jobs, index_scans, set_user_vector, user

pytestmark = pytest.mark.slow  # a year of clustered jobs and an index build per test


def ids(conn, uid):
    return [r[0] for r in conn.execute("SELECT job_id FROM match_jobs(%s, 10)", [uid])]


def exact_ids(conn, uid):
    with conn.transaction():
        conn.execute("SET LOCAL jobmatch.exact_search = on")
        return ids(conn, uid)


def drift_warning(conn) -> str | None:
    return conn.execute("SELECT warning FROM vector_index_drift(2, 0)"
                        " WHERE table_name = 'canonical_jobs'").fetchone()[0]


@pytest.fixture
def year_of_jobs(conn):
    """12,000 clustered jobs posted over a year, 10 seekers near the clusters."""
    rng = np.random.default_rng(11)
    centers, _ = clustered_jobs(conn, rng, 12000, 20, 0.6, year_of_dates=True)
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3 WHERE is_active")
    for uid in range(1, 11):
        q = centers[uid] + 0.6 * rng.standard_normal(384).astype(np.float32)
        user(conn, uid, job_roles=["Role"])
        set_user_vector(conn, uid, q / np.linalg.norm(q))
    conn.execute("ANALYZE canonical_jobs")
    return list(range(1, 11))


def test_job_index_covers_the_window_plus_margin(conn, year_of_jobs):
    since, rows, ddl = conn.execute(
        "SELECT posted_since, row_count, ddl"
        " FROM jobmatch_vector_index_ddl('job', NULL, 1000)").fetchone()
    today = conn.execute("SELECT current_date").fetchone()[0]
    assert since.date() == today - dt.timedelta(days=60 + 7)  # window + default margin
    assert rows == conn.execute("SELECT count(*) FROM canonical_jobs WHERE posted_date >= %s",
                                [since]).fetchone()[0]
    assert 1500 < rows < 3000  # ~67/360 of the 12,000
    assert "posted_date >= " in ddl and "job_embedding_model = " in ddl
    # a NULL margin indexes the whole table, as before
    conn.execute("UPDATE jobmatch_settings SET index_margin_days = NULL")
    since, rows, ddl = conn.execute(
        "SELECT posted_since, row_count, ddl"
        " FROM jobmatch_vector_index_ddl('job', NULL, 1000)").fetchone()
    assert since is None and rows == 12000 and "posted_date" not in ddl
    # seekers have no posted date: their index is never partial
    since, ddl = conn.execute(
        "SELECT posted_since, ddl"
        " FROM jobmatch_vector_index_ddl('user', NULL, 0, NULL, 'hnsw')").fetchone()
    assert since is None and "posted_date" not in ddl


def test_match_jobs_searches_the_partial_index_while_it_covers_the_window(conn, year_of_jobs):
    seekers = year_of_jobs
    exact = {u: exact_ids(conn, u) for u in seekers}
    assert all(len(v) == 10 for v in exact.values())
    name, method, lists, rows = conn.execute(
        "SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000, 'ivfflat')").fetchone()
    assert method == "ivfflat" and lists == rows // 1000
    assert conn.execute("SELECT posted_since IS NOT NULL FROM vector_index_builds"
                        " WHERE index_name = %s", [name]).fetchone()[0]
    conn.execute("ANALYZE canonical_jobs")
    conn.execute("UPDATE embedding_models SET ivfflat_probes = %s WHERE is_active", [lists])
    conn.execute("SET enable_sort = off")  # walk the index, as match_jobs does on a big window
    before = index_scans(conn)
    assert {u: ids(conn, u) for u in seekers} == exact  # every list probed: exact
    assert index_scans(conn) - before >= len(seekers)
    assert drift_warning(conn) is None
    # a window widened past the index's cutoff: exact scans, still right
    conn.execute("UPDATE jobmatch_settings SET match_window_days = 90")
    wide = {u: exact_ids(conn, u) for u in seekers}
    before = index_scans(conn)
    assert {u: ids(conn, u) for u in seekers} == wide
    assert index_scans(conn) == before
    assert "cannot use it" in drift_warning(conn)


def test_health_asks_for_a_rebuild_once_the_index_holds_a_window_of_old_jobs(conn, year_of_jobs):
    # built with a 70-day margin, as if last rebuilt ten weeks ago
    conn.execute("UPDATE jobmatch_settings SET index_margin_days = 70")
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    warning = drift_warning(conn)
    assert "still holds jobs posted since" in warning and "rebuild it weekly" in warning
    conn.execute("UPDATE jobmatch_settings SET index_margin_days = 7")
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)")
    assert drift_warning(conn) is None


def test_tune_measures_the_partial_index_and_its_candidates(conn, year_of_jobs):
    from jobmatch.index_tune import tune

    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000, 'ivfflat', false)")
    conn.execute("ANALYZE canonical_jobs")
    conn.autocommit = True  # candidate indexes build CONCURRENTLY
    result = tune(conn, "job", sample=10, settings=[1, 2], candidate_lists=[1])
    assert "posted_date >=" in result.index.predicate
    assert result.index.indexed_rows == conn.execute(
        "SELECT row_count FROM jobmatch_vector_index_ddl('job', NULL, 0)").fetchone()[0]
    assert result.index.planner_uses_index
    # every list of the live index, and the one-list candidate, is an exact search
    assert [(p.setting, p.candidate, p.recall) for p in result.points if p.setting == 2
            or p.candidate] == [(2, False, 1.0), (1, True, 1.0), (2, True, 1.0)]
