"""Gradual rollout: jobmatch_settings.semantic_share and the semantic_rollout view."""

import psycopg
import pytest

from support.data import job, set_job_vector, set_user_vector, unit, user


def share(conn, percent):
    conn.execute("UPDATE jobmatch_settings SET semantic_share = %s", [percent])


def in_share(conn, ids, percent):
    return {i for (i,) in conn.execute(
        "SELECT i FROM unnest(%s::bigint[]) AS i WHERE jobmatch_in_semantic_share(i, %s)",
        [ids, percent])}


@pytest.fixture
def seekers(conn):
    """Ten welders with vectors and one welding job near them."""
    v = unit(1)
    set_job_vector(conn, job(conn, title="Welder", ai_required_skills=["TIG"]), v)
    for uid in range(1, 11):
        user(conn, uid, job_roles=["Welder"], technical_skills=["TIG"])
        set_user_vector(conn, uid, v)
    return list(range(1, 11))


def methods(conn, ids):
    return {uid: conn.execute("SELECT match_method FROM match_jobs(%s, 10)", [uid]).fetchone()[0]
            for uid in ids}


def test_the_share_decides_semantic_or_keyword_per_seeker(conn, seekers):
    assert set(methods(conn, seekers).values()) == {"semantic"}  # default 100: everyone
    share(conn, 0)
    assert set(methods(conn, seekers).values()) == {"keyword"}   # still answered
    share(conn, 50)
    got = methods(conn, seekers)
    semantic = {u for u, m in got.items() if m == "semantic"}
    assert semantic == in_share(conn, seekers, 50)
    assert got == methods(conn, seekers)  # stable from call to call


def test_groups_are_stable_as_the_share_grows(conn):
    ids = list(range(1, 5001))
    groups = [in_share(conn, ids, p) for p in (0, 10, 50, 90, 100)]
    assert [len(g) for g in (groups[0], groups[-1])] == [0, 5000]
    assert all(a <= b for a, b in zip(groups, groups[1:]))  # nobody leaves semantic
    assert 400 <= len(groups[1]) <= 600 and 2300 <= len(groups[2]) <= 2700


def test_a_share_outside_0_100_is_refused(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        share(conn, 101)


def test_the_rollout_view_compares_the_groups(conn, seekers):
    user(conn, 99, job_roles=["Astronaut"])  # no vector, nothing of theirs: an empty answer
    share(conn, 50)
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT rollout_group, semantic_share, seekers, sampled, answered, empty_answers"
        " FROM semantic_rollout")}
    semantic = len(in_share(conn, seekers + [99], 50))
    keyword = 11 - semantic
    assert rows["semantic"][:3] == (50, semantic, semantic)
    assert rows["keyword"][:3] == (50, keyword, keyword)
    assert sum(r[3] for r in rows.values()) == 10 and sum(r[4] for r in rows.values()) == 1
