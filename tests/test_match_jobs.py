"""match_jobs(user_id, limit): the bot's one question."""

import re

import numpy as np
import psycopg
import pytest

from support.data import MODEL as MODEL_NAME
from support.data import (HARD_FILTER_CASES, at_similarity, clustered_jobs, index_scans, job,
                          set_job_vector, set_user_vector, unit, user)

COLUMNS = ["job_id", "title", "company", "location", "work_arrangement", "remote_allowed",
           "salary_min", "salary_max", "salary_currency", "posted_date", "similarity",
           "match_score", "match_reasons", "match_method"]


def match(conn, uid, limit=10):
    cur = conn.execute("SELECT * FROM match_jobs(%s, %s)", [uid, limit])
    assert [c.name for c in cur.description] == COLUMNS
    return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]


@pytest.fixture
def seeker(conn):
    """User 1 with a vector; returns the vector."""
    q = unit(0)
    user(conn, 1, job_roles=["Data Scientist"], technical_skills=["Python", "SQL"],
         preferred_locations=["Lagos"], salary_min=2000000)
    set_user_vector(conn, 1, q)
    conn.execute("DELETE FROM embedding_queue")
    return q


def add_job(conn, q, sim, days_ago=1, seed=None, **fields):
    jid = job(conn, **fields)
    conn.execute("UPDATE canonical_jobs SET posted_date = now() - make_interval(days => %s)"
                 " WHERE id = %s", [days_ago, jid])
    set_job_vector(conn, jid, at_similarity(q, sim, seed if seed is not None else jid))
    return jid


def test_semantic_best_first_with_threshold_and_window(conn, seeker):
    best = add_job(conn, seeker, 0.95, title="Senior Data Scientist")
    good = add_job(conn, seeker, 0.85)
    add_job(conn, seeker, 0.80)  # below the local model's 0.82 threshold
    add_job(conn, seeker, 0.99, days_ago=61)  # outside the 60-day window
    edge = add_job(conn, seeker, 0.90, days_ago=59)
    rows = match(conn, 1)
    assert [r["job_id"] for r in rows] == [best, edge, good]
    assert [r["match_method"] for r in rows] == ["semantic"] * 3
    assert rows[0]["similarity"] == pytest.approx(0.95, abs=1e-4)
    scores = [r["match_score"] for r in rows]
    assert all(0 < s <= 100 for s in scores)
    assert scores == sorted(scores, reverse=True)


def test_threshold_is_per_model_and_dba_tunable(conn, seeker):
    add_job(conn, seeker, 0.75)
    assert match(conn, 1) == [] or match(conn, 1)[0]["match_method"] == "keyword"
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.7 WHERE is_active")
    assert [r["match_method"] for r in match(conn, 1)] == ["semantic"]


def test_window_is_a_setting(conn, seeker):
    add_job(conn, seeker, 0.9, days_ago=80)
    assert match(conn, 1) == [] or match(conn, 1)[0]["match_method"] == "keyword"
    conn.execute("UPDATE jobmatch_settings SET match_window_days = 90")
    assert len(match(conn, 1)) == 1


def test_limit_and_cap(conn, seeker):
    for i in range(120):
        add_job(conn, seeker, 0.9 + i / 2000, seed=1000 + i)
    assert len(match(conn, 1, 3)) == 3
    assert len(match(conn, 1, 1000)) == 100  # capped by jobmatch_settings.match_max_limit
    sims = [r["similarity"] for r in match(conn, 1, 50)]
    assert sims == sorted(sims, reverse=True)


def test_default_limit_is_ten(conn, seeker):
    for i in range(15):
        add_job(conn, seeker, 0.9, seed=100 + i)
    assert len(conn.execute("SELECT * FROM match_jobs(1)").fetchall()) == 10


@pytest.mark.parametrize("uid, limit, error, message", [
    (1, None, psycopg.errors.NullValueNotAllowed, "limit must not be NULL"),
    (1, 0, psycopg.errors.InvalidParameterValue, "limit must be at least 1, got 0"),
    (1, -5, psycopg.errors.InvalidParameterValue, "limit must be at least 1, got -5"),
    (None, 10, psycopg.errors.NullValueNotAllowed, "user_id must not be NULL"),
])
def test_bad_arguments_raise_clear_errors(conn, seeker, uid, limit, error, message):
    with pytest.raises(error, match=message):
        conn.execute("SELECT * FROM match_jobs(%s, %s)", [uid, limit])


def test_unknown_user_gets_empty_result(conn):
    assert match(conn, 424242) == []


def test_vectors_of_another_model_are_never_compared_or_returned(conn, seeker):
    mine = add_job(conn, seeker, 0.9)
    other = job(conn, title="Other model job")
    set_job_vector(conn, other, unit(5, dims=1536), model="text-embedding-3-small")
    assert [r["job_id"] for r in match(conn, 1)] == [mine]
    # a seeker whose only vector is from another model is matched by keyword
    user(conn, 2, job_roles=["Data Scientist"])
    set_user_vector(conn, 2, unit(6, dims=1536), model="text-embedding-3-small")
    assert {r["match_method"] for r in match(conn, 2)} == {"keyword"}


def test_keyword_fallback_for_a_seeker_without_vector(conn):
    user(conn, 9, job_roles=["Backend Developer"], technical_skills=["Python", "PostgreSQL"])
    dev = job(conn, title="Backend Developer", ai_required_skills=["Python", "PostgreSQL"])
    partial = job(conn, title="Frontend Developer", ai_required_skills=["React"])
    job(conn, title="Nurse", ai_required_skills=["Patient care"])
    old = job(conn, title="Backend Developer", ai_required_skills=["Python"])
    conn.execute("UPDATE canonical_jobs SET posted_date = now() - interval '90 days'"
                 " WHERE id = %s", [old])
    rows = match(conn, 9)
    assert [r["job_id"] for r in rows] == [dev, partial]
    assert {r["match_method"] for r in rows} == {"keyword"}
    assert rows[0]["similarity"] is None
    assert 0 < rows[1]["match_score"] < rows[0]["match_score"] <= 100
    assert "Skills: Python, PostgreSQL" in rows[0]["match_reasons"]


def test_keyword_fallback_when_nothing_clears_the_threshold(conn, seeker):
    add_job(conn, seeker, 0.1, title="Data Scientist")
    rows = match(conn, 1)
    assert [r["match_method"] for r in rows] == ["keyword"]


def test_empty_profile_gets_empty_answer(conn):
    user(conn, 3)
    job(conn, title="Anything")
    assert match(conn, 3) == []


def test_reasons_speak_plainly(conn, seeker):
    jid = add_job(conn, seeker, 0.9, title="Data Scientist", ai_city="Lagos", ai_state="Lagos",
                  ai_required_skills=["python", "Statistics"], ai_preferred_skills=["SQL"],
                  ai_salary_min=3000000, ai_salary_max=5000000, ai_salary_currency="NGN")
    (row,) = match(conn, 1)
    assert row["job_id"] == jid
    assert row["match_reasons"] == ["Semantic match: 90%", "Skills: python, SQL", "In Lagos",
                                    "Pays NGN 3M-5M (your minimum: 2M)"]
    assert row["location"] == "Lagos, Lagos"


def test_remote_reason(conn):
    user(conn, 4, job_roles=["Writer"], work_arrangements=["Remote"])
    job(conn, title="Writer", ai_remote_allowed=True, ai_work_arrangement="Remote")
    (row,) = match(conn, 4)
    assert "Remote" in row["match_reasons"]


def test_match_jobs_is_read_only_and_leaves_probes_alone(conn, seeker):
    add_job(conn, seeker, 0.9)
    volatility = conn.execute("SELECT provolatile FROM pg_proc WHERE proname = 'match_jobs'"
                              ).fetchone()[0]
    assert volatility == "s"
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL ivfflat.probes = 3")
        assert len(match(conn, 1)) == 1
        assert conn.execute("SHOW ivfflat.probes").fetchone()[0] == "3"


@pytest.mark.slow
def test_same_results_with_and_without_the_ivfflat_index(conn):
    rng = np.random.default_rng(42)
    # ~1/6 in the window: the index must not lose rows
    centers, _ = clustered_jobs(conn, rng, 12000, 20, 0.6, year_of_dates=True)
    # no relevance floor: this compares the index with an exact scan
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3,"
                 " relevance_margin = NULL WHERE is_active")
    # an index over the whole table (tests/test_recent_index.py: the window's)
    conn.execute("UPDATE jobmatch_settings SET index_margin_days = NULL")
    seekers = []
    for uid in range(1, 21):
        q = centers[uid % 20] + 0.6 * rng.standard_normal(384).astype(np.float32)
        user(conn, uid, job_roles=["Role"])
        set_user_vector(conn, uid, q / np.linalg.norm(q))
        seekers.append(uid)
    conn.execute("ANALYZE canonical_jobs")
    exact = {u: [r["job_id"] for r in match(conn, u, 10)] for u in seekers}
    built = conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 10000,"
                         " 'ivfflat', false)").fetchone()
    assert built[1:3] == ("ivfflat", 12)  # lists = rows / 1000
    conn.execute("ANALYZE canonical_jobs")
    plan = conn.execute("EXPLAIN SELECT id FROM canonical_jobs WHERE job_embedding_model ="
                        " 'multilingual-e5-small' ORDER BY job_embedding::vector(384) <=> %s"
                        " LIMIT 10", [unit(1)]).fetchall()
    assert "canonical_jobs_job_embedding_ann" in " ".join(r[0] for r in plan)
    conn.execute("UPDATE embedding_models SET ivfflat_probes = 12 WHERE is_active")
    planner_choice = {u: [r["job_id"] for r in match(conn, u, 10)] for u in seekers}
    assert planner_choice == exact
    # With 2,000 rows in the window the planner rightly prefers an exact scan;
    # penalise sorting so match_jobs has to walk the ivfflat index instead.
    conn.execute("SET enable_sort = off")
    before = index_scans(conn)
    indexed = {u: [r["job_id"] for r in match(conn, u, 10)] for u in seekers}
    assert index_scans(conn) - before >= len(seekers)  # it really went through the index
    assert indexed == exact
    assert all(len(v) == 10 for v in exact.values())
    # One probe of 12 lists holds ~1/6 of the window's rows per list: the
    # iterative scan still fills every answer instead of post-filtering it empty.
    conn.execute("UPDATE embedding_models SET ivfflat_probes = 1 WHERE is_active")
    assert all(len(match(conn, u, 10)) == 10 for u in seekers)
    # jobmatch.exact_search: the ground truth for recall, whatever the
    # planner settings (enable_indexscan = off alone still walks the index
    # here: the walk disables sorting, and the planner picks the cheaper of
    # two disabled plans)
    conn.execute("SET enable_indexscan = off")
    conn.execute("SET jobmatch.exact_search = on")
    before = index_scans(conn)
    assert {u: [r["job_id"] for r in match(conn, u, 10)] for u in seekers} == exact
    assert index_scans(conn) == before


def test_index_refuses_to_build_on_too_little_data(conn, seeker):
    add_job(conn, seeker, 0.9)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="refusing to build"):
        conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 10000, 'ivfflat')")


def test_lists_sizing(conn):
    got = conn.execute("SELECT jobmatch_ivfflat_lists_for(0), jobmatch_ivfflat_lists_for(50000),"
                       " jobmatch_ivfflat_lists_for(1000000),"
                       " jobmatch_ivfflat_lists_for(4000000)").fetchone()
    assert got == (1, 50, 1000, 2000)


@pytest.mark.parametrize("method, halfvec", [("hnsw", False), ("ivfflat", True), ("hnsw", True),
                                             ("ivfflat", False)])
def test_hnsw_and_halfvec_indexes_serve_match_jobs(conn, method, halfvec):
    rng = np.random.default_rng(7)
    n = 3000
    centers, _ = clustered_jobs(conn, rng, n, 10, 0.5)
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3, ivfflat_probes = 3,"
                 " hnsw_ef_search = 200, index_method = %s, index_halfvec = %s WHERE is_active",
                 [method, halfvec])
    user(conn, 1, job_roles=["Role"])
    q = centers[3] + 0.5 * rng.standard_normal(384).astype(np.float32)
    set_user_vector(conn, 1, q / np.linalg.norm(q))
    exact = [r["job_id"] for r in match(conn, 1, 10)]
    (name, built_method, lists, rows) = conn.execute(
        "SELECT * FROM jobmatch_build_vector_index('job', NULL, 1000)").fetchone()
    assert (name, built_method, rows) == ("canonical_jobs_job_embedding_ann", method, n)
    conn.execute("ANALYZE canonical_jobs")
    conn.execute("SET enable_sort = off")
    before = index_scans(conn)
    indexed = [r["job_id"] for r in match(conn, 1, 10)]
    assert index_scans(conn) > before
    assert len(set(indexed) & set(exact)) >= 9  # ANN: recall@10 >= 0.9 on this small set


def test_full_precision_index_refuses_more_than_2000_dimensions(conn):
    conn.execute("SELECT set_embedding_model('text-embedding-3-large', 'openai', 3072, NULL, true)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="halfvec"):
        conn.execute("SELECT * FROM jobmatch_vector_index_ddl('job', 10, 0, NULL, 'hnsw', false)")
    ddl = conn.execute("SELECT ddl FROM jobmatch_vector_index_ddl('job', 10, 0)").fetchone()[0]
    assert "halfvec(3072)) halfvec_cosine_ops" in ddl and "USING hnsw" in ddl  # the default


def constrained_seeker(conn, **prefs):
    q = unit(0)
    user(conn, 1, job_roles=["Accountant"], **prefs)
    set_user_vector(conn, 1, q)
    return q


@pytest.mark.parametrize("prefs, fits, misfits", HARD_FILTER_CASES)
def test_stated_constraints_are_hard_filters(conn, prefs, fits, misfits):
    q = constrained_seeker(conn, **prefs)
    keep = [add_job(conn, q, 0.9, title="Accountant", **f) for f in fits]
    drop = [add_job(conn, q, 0.95, title="Accountant", **f) for f in misfits]
    rows = match(conn, 1, 50)
    assert {r["job_id"] for r in rows if r["match_method"] == "semantic"} == set(keep)
    # a job breaking one constraint is only offered as a near miss, after
    # every job that fits, saying what it breaks
    misses = [r for r in rows if r["match_method"] == "near_miss"]
    assert {r["job_id"] for r in misses} <= set(drop)
    assert [r["match_method"] for r in rows] == ["semantic"] * len(keep) + ["near_miss"] * len(misses)
    assert all("(you asked for " in r["match_reasons"][0] for r in misses)
    conn.execute("UPDATE jobmatch_settings SET match_near_misses = 0")
    assert {r["job_id"] for r in match(conn, 1, 50)} == set(keep)
    # the keyword fallback obeys them too
    conn.execute("UPDATE user_preferences SET user_embedding = NULL")
    assert {r["job_id"] for r in match(conn, 1, 50)} == set(keep)


def test_match_score_is_fused_score_on_a_0_100_scale(conn):
    q = unit(0)
    user(conn, 1, job_roles=["Zoologist"])
    set_user_vector(conn, 1, q)
    conn.execute("UPDATE jobmatch_settings SET rank_freshness_weight = 0")
    add_job(conn, q, 0.91, title="Welder")  # no shared words or skills
    (row,) = match(conn, 1)
    # cosine, plus 0.1 x keyword rank, 0.3 x skill words and 0.04 x title
    # words (all 0 here; the role term is 0 without role vectors), over 1.44
    assert float(row["match_score"]) == pytest.approx(91.0 / 1.44, abs=0.1)


def test_hard_filters_can_be_switched_off(conn):
    q = constrained_seeker(conn, preferred_locations=["Lagos"])
    far = add_job(conn, q, 0.9, ai_city="Kano", ai_state="Kano")
    (row,) = match(conn, 1)
    assert row["job_id"] == far and row["match_method"] == "near_miss"
    assert row["match_reasons"][0] == "In Kano, Kano (you asked for Lagos)"
    conn.execute("UPDATE jobmatch_settings SET match_hard_filters = false")
    assert [(r["job_id"], r["match_method"]) for r in match(conn, 1)] == [(far, "semantic")]


@pytest.mark.slow
def test_filtered_answers_are_still_full_through_the_index(conn):
    """The filters sit inside the nearest-neighbour scan, so an iterative
    index scan keeps going until it has enough jobs that fit."""
    rng = np.random.default_rng(3)
    base = unit(9)
    n = 11000
    with conn.cursor().copy("COPY canonical_jobs (title, ai_city, ai_state, job_embedding,"
                            " job_embedding_model) FROM STDIN") as cp:
        for i in range(n):
            city = "Lagos" if i % 20 == 0 else "Kano"  # 5% of jobs fit
            cp.write_row((f"Job {i}", city, city, at_similarity(base, 0.6 + 0.3 * rng.random(),
                                                                  seed=i), MODEL_NAME))
    # no relevance floor: this is about the index scan
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.5, ivfflat_probes = 1,"
                 " relevance_margin = NULL WHERE is_active")
    user(conn, 1, job_roles=["X"], preferred_locations=["Lagos"])
    set_user_vector(conn, 1, base)
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job')")
    conn.execute("ANALYZE canonical_jobs")
    conn.execute("SET enable_sort = off")
    rows = match(conn, 1, 10)
    assert len(rows) == 10 and all(r["location"] == "Lagos, Lagos" for r in rows)


def test_shared_words_and_skills_lift_a_job_over_a_slightly_closer_one(conn):
    q = unit(0)
    # no relevance floor: the Bookkeeper scores more than the margin below
    # the Payroll Accountant once the shared words count
    conn.execute("UPDATE embedding_models SET relevance_margin = NULL WHERE is_active")
    user(conn, 1, job_roles=["Payroll Accountant"], technical_skills=["Sage", "IFRS"])
    set_user_vector(conn, 1, q)
    closer = add_job(conn, q, 0.92, title="Bookkeeper", ai_required_skills=["Excel"])
    better = add_job(conn, q, 0.90, title="Payroll Accountant",
                     ai_required_skills=["Sage", "IFRS"])
    assert [r["job_id"] for r in match(conn, 1)] == [better, closer]
    conn.execute("UPDATE jobmatch_settings SET rank_keyword_weight = 0, rank_skill_weight = 0,"
                 " rank_title_weight = 0")
    assert [r["job_id"] for r in match(conn, 1)] == [closer, better]


@pytest.mark.slow
def test_big_windows_walk_the_index_without_touching_the_callers_settings(conn):
    rng = np.random.default_rng(5)
    _, vecs = clustered_jobs(conn, rng, 11000, 10, 0.5)
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3, ivfflat_probes = 11"
                 " WHERE is_active")
    user(conn, 1, job_roles=["Role"])
    set_user_vector(conn, 1, vecs[0])
    conn.execute("SELECT * FROM jobmatch_build_vector_index('job', NULL, 10000, 'ivfflat', false)")
    conn.execute("ANALYZE canonical_jobs")
    exact_answer = [r["job_id"] for r in match(conn, 1)]
    conn.execute("UPDATE embedding_models SET exact_scan_max_rows = 100 WHERE is_active")
    with conn.transaction():
        before = index_scans(conn)
        assert [r["job_id"] for r in match(conn, 1)] == exact_answer
        assert conn.execute("SHOW enable_sort").fetchone() == ("on",)
    assert index_scans(conn) > before


# ---------------------------------------------------------------- keyword fallback

def dated_job(conn, days_ago: float, **fields) -> int:
    jid = job(conn, **fields)
    conn.execute("UPDATE canonical_jobs SET posted_date = now() - make_interval(secs => %s)"
                 " WHERE id = %s", [days_ago * 86400, jid])
    return jid


def test_keyword_fallback_ranks_only_the_newest_candidates(conn):
    """With more matching jobs than keyword_candidates, the answer comes from
    the newest of them, ranked by how many of the seeker's words they share."""
    user(conn, 9, technical_skills=["Python", "PostgreSQL", "Docker"])
    one_word = [dated_job(conn, d, title=f"Engineer {d}", ai_required_skills=["Python"])
                for d in (1, 2, 4, 5)]
    two_words = dated_job(conn, 3, title="Engineer", ai_required_skills=["Python", "Docker"])
    best_but_old = dated_job(conn, 10, title="Engineer",
                             ai_required_skills=["Python", "PostgreSQL", "Docker"])
    dated_job(conn, 1.5, title="Nurse", ai_required_skills=["Patient care"])  # no shared word
    conn.execute("UPDATE jobmatch_settings SET keyword_candidates = 5")
    rows = match(conn, 9, 5)
    assert [r["job_id"] for r in rows] == [two_words, *one_word]  # ties: newest first
    assert {r["match_method"] for r in rows} == {"keyword"}
    assert rows[0]["match_score"] > rows[1]["match_score"]
    assert [r["job_id"] for r in match(conn, 9, 2)] == [two_words, one_word[0]]
    # a bigger pool reaches the older, better job
    conn.execute("UPDATE jobmatch_settings SET keyword_candidates = 6")
    assert [r["job_id"] for r in match(conn, 9, 5)][:2] == [best_but_old, two_words]
    # the pool is never smaller than the limit asked for
    conn.execute("UPDATE jobmatch_settings SET keyword_candidates = 1")
    assert [r["job_id"] for r in match(conn, 9, 3)] == [two_words, one_word[0], one_word[1]]


def test_keyword_fallback_names_the_seekers_role_first_then_widens(conn):
    """Jobs naming one of the seeker's roles as a whole come first (ranked by
    shared words); others sharing some of their words only fill the rest."""
    user(conn, 9, job_roles=["Graduate Assistant", "Lab Technician"],
         technical_skills=["Excel"])
    role = dated_job(conn, 4, title="Graduate Assistant")
    role_and_skill = dated_job(conn, 5, title="Graduate Assistant",
                               ai_required_skills=["Excel"])
    other_role = dated_job(conn, 6, title="Lab Technician")
    # more shared words than `role`, but not the role: 'assistant' twice, 'excel' twice
    many_words = dated_job(conn, 1, title="Assistant Accountant",
                           ai_job_titles=["Accounts Assistant"],
                           ai_required_skills=["Excel", "Excel VBA"])
    skill_only = dated_job(conn, 2, title="Bookkeeper", ai_required_skills=["Excel"])
    dated_job(conn, 3, title="Welder", ai_required_skills=["Welding"])
    rows = match(conn, 9)
    ids = [r["job_id"] for r in rows]
    assert ids == [role_and_skill, role, other_role, many_words, skill_only]
    ranks = {r["job_id"]: r["match_score"] for r in rows}
    assert ranks[many_words] > ranks[role]  # the old ranking would have put it first
    # enough role matches: nothing else is looked at
    assert [r["job_id"] for r in match(conn, 9, 2)] == ids[:2]
    # no roles: one tier, ranked by shared words alone
    conn.execute("UPDATE user_preferences SET job_roles = NULL WHERE user_id = 9")
    assert [r["job_id"] for r in match(conn, 9)] == [many_words, skill_only, role_and_skill]


def test_keyword_pool_holds_only_jobs_that_fit(conn):
    """The hard filters run inside the pool's scan: newer misfits never take a
    candidate's place, in either tier."""
    user(conn, 9, job_roles=["Accountant"], technical_skills=["Sage"],
         preferred_locations=["Lagos"])
    conn.execute("UPDATE jobmatch_settings SET keyword_candidates = 2")
    far = [dated_job(conn, d, title="Accountant", ai_city="Kano", ai_state="Kano")
           for d in (1, 2, 3)]
    near = [dated_job(conn, d, title="Accountant", ai_city="Ikeja", ai_state="Lagos")
            for d in (4, 5)]
    remote = dated_job(conn, 6, title="Accountant", ai_city="Kano", ai_remote_allowed=True)
    far_skill = [dated_job(conn, d, title="Clerk", ai_required_skills=["Sage"], ai_city="Kano")
                 for d in (0.1, 0.2, 0.3, 0.4)]
    near_skill = dated_job(conn, 7, title="Clerk", ai_required_skills=["Sage"],
                           ai_city="Lagos")
    assert [r["job_id"] for r in match(conn, 9, 2)] == near
    # pools of 4: three role matches fit, then the other tier's one job that fits
    ids = [r["job_id"] for r in match(conn, 9, 4)]
    assert ids == [*near, remote, near_skill]
    assert not set(ids) & {*far, *far_skill}


def test_keyword_pool_is_the_same_whichever_way_it_is_found(conn):
    """jobmatch_keyword_pool walks the posted_date index for common words and
    takes the GIN index for rare ones; either way the pool is the newest
    keyword_candidates matching jobs, ranked as if the table had no others."""
    rng = np.random.default_rng(11)
    n = 4000
    titles = []
    for i in range(n):
        r = rng.random()
        titles.append("Zoologist" if i % 800 == 7 else              # rare: 5 jobs
                      "Data Scientist" if r < 0.04 else             # a role a few name
                      "Data Entry Clerk" if r < 0.10 else           # shares a word
                      "Sales Manager" if r < 0.70 else "Nurse")     # common word
    with conn.cursor().copy("COPY canonical_jobs (title, ai_required_skills, posted_date)"
                            " FROM STDIN") as cp:
        for i, t in enumerate(titles):
            skills = ["Python"] if t == "Data Scientist" and i % 3 == 0 else ["Excel"]
            cp.write_row((t, skills, f"{np.datetime64('now') - np.timedelta64(i * 2700, 's')}"))
    conn.execute("ANALYZE canonical_jobs")  # ~1/3 of the jobs are in the 60-day window
    user(conn, 1, technical_skills=["Sales", "Management"])
    user(conn, 2, job_roles=["Data Scientist"], technical_skills=["Python"])
    user(conn, 3, job_roles=["Zoologist"])
    conn.execute("UPDATE jobmatch_settings SET keyword_candidates = 20")

    def reference(uid: int, limit: int = 10) -> list[int]:
        """Each tier's newest 20 matches (no hard filters here), ranked."""
        return [r[0] for r in conn.execute("""
            WITH u AS (SELECT jobmatch_user_keyword_query(p) AS w, jobmatch_user_role_query(p) AS s
                       FROM user_preferences AS p WHERE p.user_id = %s),
            tiers AS (SELECT 1 AS tier, u.s AS q, NULL::tsquery AS x FROM u WHERE u.s IS NOT NULL
                      UNION ALL SELECT 2, u.w, u.s FROM u)
            SELECT c.id FROM tiers AS t CROSS JOIN LATERAL (
                SELECT j.id, j.posted_date, j.job_document FROM canonical_jobs AS j
                WHERE j.job_document @@ t.q AND NOT coalesce(j.job_document @@ t.x, false)
                  AND j.posted_date >= current_date - 60
                ORDER BY j.posted_date DESC LIMIT 20) AS c, u
            ORDER BY t.tier, ts_rank_cd(c.job_document, u.w, 32) DESC, c.posted_date DESC, c.id
            LIMIT %s""", [uid, limit]).fetchall()]

    paths = []  # jobmatch_keyword_pool says how it found each pool
    conn.add_notice_handler(lambda d: paths.append(re.sub(
        r"\d+", "N", d.message_primary)) if d.message_primary.startswith("keyword pool") else None)
    conn.execute("SET client_min_messages = debug1")
    answers = {uid: [r["job_id"] for r in match(conn, uid)] for uid in (1, 2, 3)}
    conn.execute("RESET client_min_messages")
    assert paths == [
        "keyword pool: N found walking N rows",  # 1: sales or management: most jobs
        "keyword pool: N found walking on to N rows",  # 2: Data Scientist: ~1 job in 25
        "keyword pool: N found by the planner's plan (N in the first N rows)"]  # 3: Zoologist
    for uid, got in answers.items():
        assert got == reference(uid), uid
    assert len(answers[3]) == 3  # three of the five zoologists are in the window
    # a limit above the pool: the pool grows to it; fewer role matches than
    # that in the window, so all of them come first, then the others, once
    roles = conn.execute("SELECT count(*) FROM canonical_jobs WHERE title = 'Data Scientist'"
                         " AND posted_date >= current_date - 60").fetchone()[0]
    rows = match(conn, 2, 100)
    assert 20 < roles < 100 and len({r["job_id"] for r in rows}) == len(rows) == 100
    assert [r["title"] for r in rows] == ["Data Scientist"] * roles + [
        r["title"] for r in rows[roles:] if r["title"] != "Data Scientist"]


def test_keyword_candidates_must_be_sensible(conn):
    for bad, error in [(0, psycopg.errors.CheckViolation),
                       (10001, psycopg.errors.CheckViolation),
                       (None, psycopg.errors.NotNullViolation)]:
        with pytest.raises(error):
            conn.execute("UPDATE jobmatch_settings SET keyword_candidates = %s", [bad])
    assert conn.execute("SELECT keyword_candidates FROM jobmatch_settings").fetchone() == (200,)


# ------------------------------------------------------------ relevance floor, near misses

def test_unrelated_jobs_are_not_filler(conn):
    """When the jobs that fit are far from what the seeker asked for (their
    best job of any kind scores far higher), the seeker gets fewer rows, not
    filler; the relevance floor is per model and can be switched off."""
    q = constrained_seeker(conn, preferred_locations=["Benin City"], employment_types=["Contract"])
    conn.execute("UPDATE jobmatch_settings SET match_near_misses = 0")
    fits_far = add_job(conn, q, 0.80, title="Sales Executive", ai_city="Benin City")
    fits_near = add_job(conn, q, 0.93, title="Accountant", ai_city="Benin City")
    add_job(conn, q, 0.97, title="Accountant", ai_city="Lagos", ai_state="Lagos")
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.5 WHERE is_active")
    assert [r["job_id"] for r in match(conn, 1)] == [fits_near]
    conn.execute("UPDATE embedding_models SET relevance_margin = NULL WHERE is_active")
    assert [r["job_id"] for r in match(conn, 1)] == [fits_near, fits_far]


def test_near_misses_come_after_every_fitting_job_and_say_what_they_break(conn):
    q = constrained_seeker(conn, preferred_locations=["Lagos"], employment_types=["Contract"],
                           salary_min=3000000)
    fits = add_job(conn, q, 0.90, title="Accountant", ai_city="Ikeja", ai_state="Lagos",
                   ai_employment_type="Contract")
    place = add_job(conn, q, 0.97, title="Accountant", ai_city="Kano", ai_state="Kano",
                    ai_employment_type="Contract")
    kind = add_job(conn, q, 0.96, title="Accountant", ai_city="Ikeja", ai_state="Lagos",
                   ai_employment_type="Full-time")
    pay = add_job(conn, q, 0.95, title="Accountant", ai_city="Ikeja", ai_state="Lagos",
                  ai_salary_min=1000000, ai_salary_max=2000000, ai_salary_currency="NGN")
    add_job(conn, q, 0.98, title="Accountant", ai_city="Kano", ai_state="Kano",
            ai_employment_type="Full-time")  # breaks two: never offered
    rows = match(conn, 1)
    assert [(r["job_id"], r["match_method"]) for r in rows] == [
        (fits, "semantic"), (place, "near_miss"), (kind, "near_miss"), (pay, "near_miss")]
    assert [r["match_reasons"][0] for r in rows[1:]] == [
        "In Kano, Kano (you asked for Lagos)", "Full-time (you asked for Contract)",
        "Pays NGN 1M-2M (you asked for 3M+)"]
    conn.execute("UPDATE jobmatch_settings SET match_near_misses = 1")
    assert [r["job_id"] for r in match(conn, 1)] == [fits, place]


def test_experience_gap_and_freshness_break_near_ties(conn):
    q = unit(0)
    user(conn, 1, job_roles=["Accountant"], experience_level="Senior", years_of_experience=8)
    set_user_vector(conn, 1, q)
    entry = add_job(conn, q, 0.900, seed=11, title="Accountant", ai_job_level=["Entry"],
                    ai_years_experience_min=0, ai_years_experience_max=2)
    senior = add_job(conn, q, 0.898, seed=12, title="Accountant", ai_job_level=["Senior"],
                     ai_years_experience_min=5, ai_years_experience_max=10)
    assert [r["job_id"] for r in match(conn, 1)] == [senior, entry]  # weak, not excluded
    assert conn.execute("SELECT jobmatch_experience_gap('Senior', 8, '{Entry}', 0, 2),"
                        " jobmatch_experience_gap('Entry', 1, '{Senior}', 5, 10),"
                        " jobmatch_experience_gap('Mid', NULL, '{Senior}', NULL, NULL),"
                        " jobmatch_experience_gap(NULL, NULL, '{Senior}', 5, NULL)"
                        ).fetchone() == (0.375, 1.0, pytest.approx(1 / 3), 0.0)
    old = add_job(conn, q, 0.88, days_ago=40, seed=13, title="Accountant")
    new = add_job(conn, q, 0.88, days_ago=2, seed=14, title="Accountant")
    ids = [r["job_id"] for r in match(conn, 1)]
    assert ids.index(new) < ids.index(old)
