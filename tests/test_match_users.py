"""match_users(job_id, limit): the seekers a job fits, by match_jobs' own
rules, so the two directions agree."""

import numpy as np
import psycopg
import pytest

from support.data import MODEL as MODEL_NAME
from support.data import (HARD_FILTER_CASES, at_similarity, job, set_job_vector, set_user_vector,
                          unit, user)

COLUMNS = ["user_id", "similarity", "match_score", "match_reasons", "match_method"]


def users_of(conn, job_id, limit=100):
    cur = conn.execute("SELECT * FROM match_users(%s, %s)", [job_id, limit])
    assert [c.name for c in cur.description] == COLUMNS
    return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]


def jobs_of(conn, user_id, limit=100):
    return conn.execute("SELECT job_id, match_score, match_method, match_reasons"
                        " FROM match_jobs(%s, %s)", [user_id, limit]).fetchall()


def add_job(conn, vec, days_ago=1, **fields):
    jid = job(conn, **fields)
    conn.execute("UPDATE canonical_jobs SET posted_date = now() - make_interval(secs => %s * 86400)"
                 " WHERE id = %s", [days_ago, jid])
    set_job_vector(conn, jid, vec)
    return jid


def add_seeker(conn, uid, vec, **prefs):
    user(conn, uid, **prefs)
    set_user_vector(conn, uid, vec)
    return uid


# ------------------------------------------------------------------ both directions agree

CITIES = ["Lagos", "Abuja", "Kano"]
# two sub-centres (titles) per family (function)
TITLES = ["Accountant", "Payroll Accountant", "Nurse", "Midwife", "Welder", "Fitter",
          "Driver", "Dispatch Rider"]
FUNCTIONS = ["Finance", "Finance", "Health", "Health", "Engineering", "Engineering",
             "Logistics", "Logistics"]
SKILLS = ["Sage", "IFRS", "Triage", "Antenatal care", "Welding", "Fitting", "Driving",
          "Routing"]


def world(conn, seed=1, seekers=40, jobs=60):
    """Seekers and jobs around the sub-centres of four job families: the
    same sub-centre is close (~0.9), a sibling sub-centre near (~0.6-0.8),
    another family far; each side states or has places, types, pay; some
    seekers name job categories. The threshold is lowered to 0.3 so sibling
    pairs clear it and the relevance floor (the local model's margin, 0.15)
    is what keeps them out, or not."""
    rng = np.random.default_rng(seed)
    families = [unit(100 + f) for f in range(4)]
    # per-dimension noise: sibling sub-centres at cosine ~0.7, members of a
    # sub-centre ~0.95 from it
    subs = [unit(base=f, noise=0.034, seed=200 + 10 * k + i)
            for k, f in enumerate(families) for i in range(2)]
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3 WHERE is_active")
    job_ids, user_ids = [], []
    for i in range(jobs):
        s = int(rng.integers(len(subs)))
        fields = dict(title=TITLES[s], ai_job_function=FUNCTIONS[s],
                      ai_required_skills=[SKILLS[s], SKILLS[(s + 1) % len(SKILLS)]])
        r = rng.random()
        if r < 0.6:
            fields.update(ai_city=CITIES[int(rng.integers(3))], ai_state="X")
        elif r < 0.75:
            fields.update(ai_remote_allowed=True)
        if rng.random() < 0.5:
            fields["ai_employment_type"] = ["Full-time", "Contract"][int(rng.integers(2))]
        if rng.random() < 0.4:
            low = int(rng.integers(1, 6)) * 1_000_000
            fields.update(ai_salary_min=low, ai_salary_max=2 * low, ai_salary_currency="NGN")
        job_ids.append(add_job(conn, unit(base=subs[s], noise=0.017, seed=1000 + i),
                               days_ago=float(rng.uniform(0, 59)), **fields))
        if i % 4:  # a role vector (the role term counts in both directions); some have none
            conn.execute("UPDATE canonical_jobs SET job_role_embedding = %s WHERE id = %s",
                         [unit(base=subs[s], noise=0.03, seed=3000 + i), job_ids[-1]])
    for uid in range(1, seekers + 1):
        s = int(rng.integers(len(subs)))
        prefs = dict(job_roles=[TITLES[s]], technical_skills=[SKILLS[s]])
        if rng.random() < 0.7:
            prefs["preferred_locations"] = [CITIES[int(rng.integers(3))]]
        if rng.random() < 0.2:
            prefs["willing_to_relocate"] = True
        if rng.random() < 0.4:
            prefs["employment_types"] = ["Full-time"]
        if rng.random() < 0.4:
            prefs["salary_min"] = int(rng.integers(1, 8)) * 1_000_000
        if rng.random() < 0.3:  # the family's function: its sibling's jobs are relevant too
            prefs["job_categories"] = [FUNCTIONS[s]]
        user_ids.append(add_seeker(conn, uid, unit(base=subs[s], noise=0.017, seed=5000 + uid),
                                   **prefs))
        if uid % 5:
            conn.execute("UPDATE user_preferences SET user_role_embedding = %s WHERE user_id = %s",
                         [unit(base=subs[s], noise=0.03, seed=7000 + uid), uid])
    conn.execute("DELETE FROM embedding_queue")
    return job_ids, user_ids


def pairs_both_ways(conn, job_ids, user_ids):
    from_jobs = {(u, jid): score for u in user_ids
                 for jid, score, method, _ in jobs_of(conn, u) if method == "semantic"}
    from_users = {(r["user_id"], jid): r["match_score"] for jid in job_ids
                  for r in users_of(conn, jid)}
    return from_jobs, from_users


@pytest.mark.slow
def test_match_users_and_match_jobs_agree_pair_for_pair(conn):
    job_ids, user_ids = world(conn)
    from_jobs, from_users = pairs_both_ways(conn, job_ids, user_ids)
    # every pair match_jobs returns for a seeker is one match_users returns
    # for that job, with the same match_score, and the other way round
    assert from_jobs == from_users
    assert len(from_jobs) > 100
    # and the rules did work: pairs above the threshold were left out for
    # their constraints and for the relevance floor, in both directions
    above = conn.execute(
        "SELECT count(*) FROM canonical_jobs j, user_preferences u"
        " WHERE 1 - (j.job_embedding <=> u.user_embedding) >= 0.3").fetchone()[0]
    fits = conn.execute(
        "SELECT count(*) FROM canonical_jobs j, user_preferences u"
        " WHERE 1 - (j.job_embedding <=> u.user_embedding) >= 0.3"
        " AND jobmatch_fits(u, jobmatch_lower_set(u.preferred_locations),"
        "                   jobmatch_lower_set(u.employment_types), j)").fetchone()[0]
    assert above > fits > len(from_jobs) + 50
    # the job-category rule lets in pairs the floor alone would not
    conn.execute("UPDATE user_preferences SET job_categories = NULL")
    no_categories, _ = pairs_both_ways(conn, job_ids, user_ids)
    assert set(no_categories) < set(from_jobs)
    # no floor: more pairs, still in agreement
    conn.execute("UPDATE embedding_models SET relevance_margin = NULL WHERE is_active")
    open_jobs, open_users = pairs_both_ways(conn, job_ids, user_ids)
    assert open_jobs == open_users and len(open_jobs) > len(from_jobs)
    # a gradual rollout: seekers outside the semantic share get keyword
    # matches from match_jobs, and no job from match_users
    conn.execute("UPDATE jobmatch_settings SET semantic_share = 50")
    half_jobs, half_users = pairs_both_ways(conn, job_ids, user_ids)
    assert half_jobs == half_users
    assert 0.2 * len(open_jobs) < len(half_jobs) < 0.8 * len(open_jobs)


@pytest.mark.slow
def test_agreement_holds_through_both_vector_indexes(conn):
    """The same pairs when each side is searched through its HNSW index."""
    job_ids, user_ids = world(conn, seed=2)
    exact_jobs, exact_users = pairs_both_ways(conn, job_ids, user_ids)
    for table in ("job", "user"):
        conn.execute("SELECT * FROM jobmatch_build_vector_index(%s, NULL, 0, 'hnsw', true)",
                     [table])
    conn.execute("UPDATE embedding_models SET hnsw_ef_search = 400 WHERE is_active")
    conn.execute("ANALYZE canonical_jobs, user_preferences")
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET enable_sort = off")
    before = user_index_scans(conn)
    indexed_jobs, indexed_users = pairs_both_ways(conn, job_ids, user_ids)
    assert user_index_scans(conn) - before >= len(job_ids)
    assert indexed_jobs == exact_jobs and indexed_users == exact_users


def user_index_scans(conn) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT idx_scan FROM pg_stat_user_indexes"
                       " WHERE indexrelname = 'user_preferences_user_embedding_ann'").fetchone()
    return row[0] if row else 0


# ------------------------------------------------------------------ the rules, job's side

@pytest.mark.parametrize("prefs, fits, misfits", HARD_FILTER_CASES)
def test_a_job_reaches_only_the_seekers_whose_constraints_it_fits(conn, prefs, fits, misfits):
    q = unit(0)
    add_seeker(conn, 1, q, job_roles=["Accountant"], **prefs)
    keep = [add_job(conn, at_similarity(q, 0.9, 10 + i), title="Accountant", **f)
            for i, f in enumerate(fits)]
    drop = [add_job(conn, at_similarity(q, 0.95, 20 + i), title="Accountant", **f)
            for i, f in enumerate(misfits)]
    for jid in keep:
        assert [r["user_id"] for r in users_of(conn, jid)] == [1]
    for jid in drop:
        assert users_of(conn, jid) == []
    # match_jobs says the same from the seeker's side
    assert {r[0] for r in jobs_of(conn, 1) if r[2] == "semantic"} == set(keep)


def test_the_relevance_floor_holds_from_the_jobs_side(conn):
    """A job that fits but is far below what the seeker's best job scores
    does not reach them (match_jobs leaves it out too); with the floor off,
    or when it is in one of the seeker's job categories, it does."""
    q = unit(0)
    add_seeker(conn, 1, q, job_roles=["Accountant"], preferred_locations=["Benin City"])
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.5 WHERE is_active")
    far = add_job(conn, at_similarity(q, 0.80, 1), title="Sales Executive", ai_city="Benin City",
                  ai_job_function="Sales")
    near = add_job(conn, at_similarity(q, 0.93, 2), title="Accountant", ai_city="Benin City")
    add_job(conn, at_similarity(q, 0.97, 3), title="Accountant", ai_city="Lagos")  # the best
    assert [r["user_id"] for r in users_of(conn, near)] == [1]
    assert users_of(conn, far) == []
    conn.execute("UPDATE user_preferences SET job_categories = ARRAY['sales '] WHERE user_id = 1")
    assert [r["user_id"] for r in users_of(conn, far)] == [1]
    conn.execute("UPDATE user_preferences SET job_categories = NULL WHERE user_id = 1")
    conn.execute("UPDATE embedding_models SET relevance_margin = NULL WHERE is_active")
    assert [r["user_id"] for r in users_of(conn, far)] == [1]


def test_threshold_ranking_reasons_and_same_score_as_match_jobs(conn):
    q = unit(0)
    jid = add_job(conn, q, title="Payroll Accountant", ai_city="Lagos", ai_state="Lagos",
                  ai_required_skills=["Sage", "IFRS"], ai_salary_min=3000000,
                  ai_salary_max=5000000, ai_salary_currency="NGN")
    add_seeker(conn, 1, at_similarity(q, 0.90, 1), job_roles=["Payroll Accountant"],
               technical_skills=["Sage"], preferred_locations=["Lagos"], salary_min=2000000)
    add_seeker(conn, 2, at_similarity(q, 0.92, 2), job_roles=["Bookkeeper"])
    add_seeker(conn, 3, at_similarity(q, 0.80, 3), job_roles=["Payroll Accountant"])  # < 0.82
    rows = users_of(conn, jid)
    # shared words lift seeker 1 over the slightly closer seeker 2
    assert [r["user_id"] for r in rows] == [1, 2]
    assert rows[0]["match_reasons"] == ["Semantic match: 90%", "Skills: Sage", "In Lagos",
                                        "Pays NGN 3M-5M (your minimum: 2M)"]
    assert {r["match_method"] for r in rows} == {"semantic"}
    assert rows[0]["similarity"] == pytest.approx(0.90, abs=1e-4)
    for r in rows:
        (mine,) = [x for x in jobs_of(conn, r["user_id"]) if x[0] == jid]
        assert mine[1] == r["match_score"] and mine[3] == r["match_reasons"]


# ------------------------------------------------------------------ input rules

@pytest.mark.parametrize("job_id, limit, error, message", [
    (1, None, psycopg.errors.NullValueNotAllowed, "match_users: limit must not be NULL"),
    (1, 0, psycopg.errors.InvalidParameterValue, "match_users: limit must be at least 1, got 0"),
    (1, -5, psycopg.errors.InvalidParameterValue, "limit must be at least 1, got -5"),
    (None, 10, psycopg.errors.NullValueNotAllowed, "match_users: job_id must not be NULL"),
])
def test_bad_arguments_raise_clear_errors(conn, job_id, limit, error, message):
    with pytest.raises(error, match=message):
        conn.execute("SELECT * FROM match_users(%s, %s)", [job_id, limit])


def test_jobs_it_cannot_answer_for_get_zero_rows(conn):
    q = unit(0)
    add_seeker(conn, 1, q, job_roles=["Accountant"])
    fresh = add_job(conn, at_similarity(q, 0.9, 1))
    old = add_job(conn, at_similarity(q, 0.9, 2), days_ago=61)
    no_vector = job(conn, title="Accountant")
    other_model = job(conn, title="Accountant")
    set_job_vector(conn, other_model, unit(5, dims=1536), model="text-embedding-3-small")
    assert [r["user_id"] for r in users_of(conn, fresh)] == [1]
    for jid in (old, no_vector, other_model, 424242):
        assert users_of(conn, jid) == []
    # a seeker whose vector is another model's is never compared
    user(conn, 2, job_roles=["Accountant"])
    set_user_vector(conn, 2, unit(6, dims=1536), model="text-embedding-3-small")
    assert [r["user_id"] for r in users_of(conn, fresh)] == [1]


def test_default_limit_and_cap(conn):
    q = unit(0)
    jid = add_job(conn, q)
    for uid in range(1, 131):
        add_seeker(conn, uid, at_similarity(q, 0.9 + uid / 2000, uid), job_roles=["Accountant"])
    assert len(conn.execute("SELECT * FROM match_users(%s)", [jid]).fetchall()) == 100
    assert len(users_of(conn, jid, 1000)) == 100  # capped by match_max_limit
    assert len(users_of(conn, jid, 7)) == 7
    sims = [r["similarity"] for r in users_of(conn, jid, 50)]
    assert sims == sorted(sims, reverse=True)


def test_read_only_and_leaves_the_callers_settings_alone(conn):
    q = unit(0)
    add_seeker(conn, 1, q, job_roles=["Accountant"])
    jid = add_job(conn, q)
    assert conn.execute("SELECT provolatile, prosecdef, proconfig FROM pg_proc"
                        " WHERE proname = 'match_users'").fetchone()[:2] == ("s", True)
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL hnsw.ef_search = 7")
        assert len(users_of(conn, jid)) == 1
        assert conn.execute("SHOW hnsw.ef_search").fetchone()[0] == "7"
        assert conn.execute("SHOW enable_sort").fetchone()[0] == "on"


@pytest.mark.slow
def test_filtered_answers_are_full_through_the_seekers_index(conn):
    """The constraints sit inside the seekers' index scan: an iterative scan
    keeps going until it has enough seekers the job fits, and gives the
    exact search's answer."""
    rng = np.random.default_rng(3)
    base = unit(9)
    n = 11000
    with conn.cursor().copy("COPY user_preferences (user_id, job_roles, preferred_locations,"
                            " user_embedding, embedding_model) FROM STDIN") as cp:
        for i in range(n):
            city = "Lagos" if i % 20 == 0 else "Kano"  # 5% of seekers fit
            cp.write_row((i + 1, ["X"], [city], at_similarity(base, 0.6 + 0.3 * rng.random(),
                                                              seed=i), MODEL_NAME))
    conn.execute("DELETE FROM embedding_queue")
    conn.execute("UPDATE embedding_models SET similarity_threshold = 0.5,"
                 " relevance_margin = NULL, hnsw_ef_search = 10 WHERE is_active")
    jid = add_job(conn, base, title="X", ai_city="Lagos", ai_state="Lagos")
    exact = [r["user_id"] for r in users_of(conn, jid, 20)]
    built = conn.execute("SELECT * FROM jobmatch_build_vector_index('user', NULL, 0)").fetchone()
    assert built[:2] == ("user_preferences_user_embedding_ann", "hnsw")
    conn.execute("ANALYZE user_preferences")
    conn.execute("SET enable_sort = off")
    before = user_index_scans(conn)
    rows = users_of(conn, jid, 20)
    assert user_index_scans(conn) > before
    assert len(rows) == 20 and all(r["user_id"] % 20 == 1 for r in rows)
    assert len(set(exact) & {r["user_id"] for r in rows}) >= 18  # ANN: recall@20 >= 0.9
    # the exact search is still there for a recall to be measured against
    conn.execute("SET jobmatch.exact_search = on")
    before = user_index_scans(conn)
    assert [r["user_id"] for r in users_of(conn, jid, 20)] == exact
    assert user_index_scans(conn) == before
