"""A second vector per row (issue #13): the role text (what the work is
called: the profile text's first line without its labels) is embedded on its
own beside the profile text, written back with it under the one hash that
covers both, reused with it by the content cache, parked with it, refused
like it when bad, and fused into match_jobs' score; rows without a role
vector are still matched, with a neutral role term."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.fake_openai import fake_embedding
from support.data import (MODEL, at_similarity, job, queue_rows, set_job_vector, set_user_vector,
                          unit, user)
from test_profile_text import FULL_JOB, FULL_USER
from jobmatch import queue
from jobmatch.batch import drain
from jobmatch.embedders import Embedded, Item


def role_text(conn, kind: str, key: int) -> str | None:
    if kind == "user":
        sql = "SELECT jobmatch_user_role_text(u) FROM user_preferences u WHERE user_id = %s"
    else:
        sql = "SELECT jobmatch_job_role_text(j) FROM canonical_jobs j WHERE id = %s"
    return conn.execute(sql, [key]).fetchone()[0]


def texts_and_hash(conn, kind: str, key: int) -> tuple[str, str | None, object]:
    fn, table, col = (("jobmatch_user_profile_text", "user_preferences u", "user_id")
                      if kind == "user"
                      else ("jobmatch_job_profile_text", "canonical_jobs u", "id"))
    return conn.execute(f"SELECT {fn}(u), jobmatch_role_text({fn}(u)),"
                        f" jobmatch_text_hash({fn}(u)) FROM {table} WHERE {col} = %s",
                        [key]).fetchone()


# ------------------------------------------------------------------ the role text

def test_role_text_is_the_first_line_without_labels(conn):
    user(conn, 1, **FULL_USER)
    assert role_text(conn, "user", 1) == "Data Scientist, Machine Learning Engineer. Data & AI"
    jid = job(conn, **FULL_JOB)
    assert role_text(conn, "job", jid) == "Senior Data Scientist. ML Scientist. Data & Analytics"
    # no role named: the seeker's own words say what they want
    user(conn, 2, job_categories=["Driving"], user_job_input=" I  drive\ttrucks ",
         technical_skills=["HGV licence"])
    assert role_text(conn, "user", 2) == "Driving. I drive trucks"
    assert conn.execute("SELECT jobmatch_user_profile_text(u) FROM user_preferences u"
                        " WHERE user_id = 2").fetchone() == (
        "Job categories: Driving. Job interests: I drive trucks\nSkills: HGV licence",)
    # nothing that names the work: no role text, no role vector
    user(conn, 3, technical_skills=["Python"])
    user(conn, 4)
    assert role_text(conn, "user", 3) is None and role_text(conn, "user", 4) is None
    skills_only = job(conn, title=None, ai_required_skills=["Welding"])
    empty = job(conn, title="  ")
    assert role_text(conn, "job", skills_only) is None and role_text(conn, "job", empty) is None


@pytest.mark.slow
def test_role_text_is_bounded_like_the_profile_text(conn):
    huge = ["x" * 1000 + f" {i}" for i in range(100_000)]
    user(conn, 1, job_roles=huge, job_categories=huge, user_job_input="word " * 100_000)
    user(conn, 2, job_categories=huge, user_job_input="word " * 100_000)
    jid = job(conn, title="t" * 100_000, ai_job_titles=huge, ai_job_function="f" * 100_000)
    # roles and categories: 500 characters each; free text 300; a title or function 300
    assert len(role_text(conn, "user", 1)) <= 500 + 2 + 500
    assert len(role_text(conn, "user", 2)) <= 500 + 2 + 300
    assert len(role_text(conn, "job", jid)) <= 300 + 2 + 500 + 2 + 300
    for kind, key in (("user", 1), ("user", 2), ("job", jid)):
        assert "\n" not in role_text(conn, kind, key)


ROLE_WORDS = st.sampled_from(["Cook", "Chef", "a. Skills: x", "Job title: Cook", "Seeking roles: b",
                              "x\ny", "  ", "", "Cook. Job interests: z"])
ROLE_LISTS = st.one_of(st.none(), st.lists(ROLE_WORDS, max_size=3))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(a=st.fixed_dictionaries({"job_roles": ROLE_LISTS, "job_categories": ROLE_LISTS,
                                "user_job_input": st.one_of(st.none(), ROLE_WORDS),
                                "technical_skills": ROLE_LISTS}),
       b=st.fixed_dictionaries({"job_roles": ROLE_LISTS, "job_categories": ROLE_LISTS,
                                "user_job_input": st.one_of(st.none(), ROLE_WORDS),
                                "technical_skills": ROLE_LISTS}))
def test_one_hash_covers_both_texts(conn, a, b):
    """Whatever the seeker writes (labels, line breaks and all), two rows
    whose profile texts hash alike have the same role text: the claim, the
    content cache, the stale sweep and parked vectors may go by the one hash."""
    with conn.transaction(force_rollback=True):
        user(conn, 1, **a)
        user(conn, 2, **b)
        (pa, ra, ha), (pb, rb, hb) = texts_and_hash(conn, "user", 1), texts_and_hash(conn, "user", 2)
    if ha == hb:
        assert ra == rb
    if ra != rb:
        assert ha != hb


@pytest.mark.parametrize("table, change", [
    ("user", "job_roles = ARRAY['Chef']"),
    ("user", "job_categories = ARRAY['Hospitality']"),
    ("job", "title = 'Chef'"),
    ("job", "ai_job_titles = ARRAY['Line cook']"),
    ("job", "ai_job_function = 'Kitchen'"),
])
def test_a_change_to_what_the_role_text_reads_changes_the_hash_and_queues_the_row(conn, table,
                                                                                 change):
    if table == "user":
        key = user(conn, 1, job_roles=["Cook"], technical_skills=["Grill"])
        update = f"UPDATE user_preferences SET {change} WHERE user_id = %s"
    else:
        key = job(conn, title="Cook", ai_required_skills=["Grill"])
        update = f"UPDATE canonical_jobs SET {change} WHERE id = %s"
    drain_local(conn)
    _, role_before, hash_before = texts_and_hash(conn, table, key)
    conn.execute(update, [key])
    _, role_after, hash_after = texts_and_hash(conn, table, key)
    assert role_after != role_before and hash_after != hash_before
    assert queue_rows(conn) == [(table, key)]


# ---------------------------------------------------------------- the write path

class Recording:
    """An embedder (jobmatch.embedders protocol) with deterministic vectors of
    the text, that records each call's items."""

    provider, model, dimensions = "local", MODEL, 384

    def __init__(self):
        self.calls: list[list[Item]] = []

    def embed(self, items):
        self.calls.append(list(items))
        return Embedded(np.stack([fake_embedding(("q:" if it.is_query else "p:") + it.text, 384)
                                  for it in items]), requests=1)


def expected(text: str, query: bool) -> np.ndarray:
    return fake_embedding(("q:" if query else "p:") + text, 384)


def drain_local(conn) -> Recording:
    emb = Recording()
    drain(conn, emb, "t")
    return emb


def vectors(conn, kind: str, key: int):
    sql = ("SELECT user_embedding, user_role_embedding FROM user_preferences WHERE user_id = %s"
           if kind == "user" else
           "SELECT job_embedding, job_role_embedding FROM canonical_jobs WHERE id = %s")
    return tuple(None if v is None else v.to_numpy() for v in conn.execute(sql, [key]).fetchone())


def test_the_worker_embeds_both_texts_of_a_row_in_one_call_and_writes_both(conn):
    user(conn, 1, **FULL_USER)
    user(conn, 2, technical_skills=["Python"])  # no role text
    jid = job(conn, **FULL_JOB)
    (claimed_job,) = [c for c in queue.claim(conn, "peek", 10, 0.001) if c.entity_type == "job"]
    assert claimed_job.role_text == "Senior Data Scientist. ML Scientist. Data & Analytics"
    conn.execute("UPDATE embedding_queue SET locked_by = NULL, locked_until = NULL")
    emb = drain_local(conn)
    (items,) = emb.calls
    sent = [(it.entity_type, it.text) for it in items]
    user_profile, user_role, _ = texts_and_hash(conn, "user", 1)
    job_profile, job_role, _ = texts_and_hash(conn, "job", jid)
    # a row's two texts side by side, seekers as queries and jobs as passages
    assert sent.index(("user", user_role)) == sent.index(("user", user_profile)) + 1
    assert sent.index(("job", job_role)) == sent.index(("job", job_profile)) + 1
    assert len(sent) == 5
    p, r = vectors(conn, "user", 1)
    assert np.allclose(p, expected(user_profile, True)) and np.allclose(r, expected(user_role, True))
    p, r = vectors(conn, "job", jid)
    assert np.allclose(p, expected(job_profile, False)) and np.allclose(r, expected(job_role, False))
    p, r = vectors(conn, "user", 2)
    assert p is not None and r is None
    assert queue_rows(conn) == []
    assert conn.execute("SELECT users_embedded, jobs_embedded FROM embedding_health"
                        ).fetchone() == (2, 1)


def test_the_cache_reuses_both_vectors_and_never_a_pair_without_its_role_vector(conn):
    first = job(conn, title="Welder", ai_required_skills=["TIG"], posted_date="now()")
    drain_local(conn)
    dup = job(conn, title="Welder", ai_required_skills=["TIG"], posted_date="now()")
    assert queue.claim(conn, "w", 10) == []  # reused, not paid for
    assert all(np.allclose(a, b) for a, b in zip(vectors(conn, "job", dup),
                                                  vectors(conn, "job", first)))
    assert conn.execute("SELECT cached_inputs FROM embedding_usage").fetchone() == (2,)
    # a vector stored without the role vector its text asks for (a writer
    # that sent none, a row from before role vectors) is not handed on:
    # the row is embedded, both texts
    conn.execute("UPDATE canonical_jobs SET job_role_embedding = NULL")
    again = job(conn, title="Welder", ai_required_skills=["TIG"], posted_date="now()")
    (row,) = queue.claim(conn, "w", 10)
    assert (row.entity_id, row.role_text) == (again, "Welder")
    # nor is the row's own: a new profile-text version (the migration that
    # brought role vectors) re-embeds a row whose text did not change
    conn.execute("UPDATE embedding_queue SET locked_by = NULL, locked_until = NULL")
    conn.execute("UPDATE jobmatch_settings SET profile_text_version = profile_text_version + 1")
    conn.execute("SELECT enqueue_stale_embeddings()")
    drain_local(conn)
    assert all(v is not None for i in (first, dup, again) for v in vectors(conn, "job", i))


def test_parked_vectors_carry_the_role_vector(conn, other):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w", 10)
    with other.transaction():
        other.execute("SELECT 1 FROM user_preferences WHERE user_id = 1 FOR UPDATE")
        assert queue.complete(conn, "w", MODEL, rows, [unit(1)], [unit(2)]) == 0
        assert conn.execute("SELECT parked_role_embedding IS NOT NULL FROM embedding_queue"
                            ).fetchone() == (True,)
    conn.execute("UPDATE embedding_queue SET run_after = now()")
    assert queue.claim(conn, "w2", 10) == []  # written from the parked vectors
    p, r = vectors(conn, "user", 1)
    assert np.allclose(p, unit(1)) and np.allclose(r, unit(2))


@pytest.mark.parametrize("bad, message", [
    (np.zeros(384, dtype=np.float32), "role vector: zero vector"),
    (unit(3, dims=12), "role vector: 12 dimensions, expected 384"),
    (unit(3) * np.float32(1e-30), "role vector: zero vector"),
])
def test_a_bad_role_vector_is_refused_like_a_bad_profile_vector(conn, bad, message):
    user(conn, 1, job_roles=["Cook"])
    user(conn, 2, job_roles=["Chef"])
    rows = queue.claim(conn, "w", 10)
    with pytest.raises(psycopg.errors.DataException, match=message):
        queue.complete(conn, "w", MODEL, rows, [unit(1), unit(2)], [unit(4), bad])
    assert vectors(conn, "user", 1) == (None, None)  # nothing of the call is written
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="differ in length"):
        queue.complete(conn, "w", MODEL, rows, [unit(1), unit(2)], [unit(4)])
    # None: no role vector for that row (it is matched with a neutral role term)
    assert queue.complete(conn, "w", MODEL, rows, [unit(1), unit(2)], [unit(4), None]) == 2


# ------------------------------------------------------------------- match_jobs

@pytest.fixture
def plumber(conn):
    """A seeker with both vectors; jobs share their skills and differ in role."""
    q, r = unit(0), unit(100)
    user(conn, 1, job_roles=["Plumber"], technical_skills=["Pipe fitting", "Soldering"])
    set_user_vector(conn, 1, q)
    conn.execute("UPDATE user_preferences SET user_role_embedding = %s", [r])

    def add(profile_sim, role_sim, title, seed):
        jid = job(conn, title=title, ai_required_skills=["Pipe fitting", "Soldering"],
                  posted_date="now()")
        set_job_vector(conn, jid, at_similarity(q, profile_sim, seed))
        if role_sim is not None:
            conn.execute("UPDATE canonical_jobs SET job_role_embedding = %s WHERE id = %s",
                         [at_similarity(r, role_sim, seed + 1000), jid])
        return jid

    conn.execute("DELETE FROM embedding_queue")
    return add


def ids(conn, uid=1):
    return [row[0] for row in conn.execute("SELECT job_id FROM match_jobs(%s, 10)", [uid])]


def test_the_role_vector_ranks_a_same_role_job_above_a_same_skills_other_role_job(conn, plumber):
    same_role = plumber(0.895, 0.95, "Drainage Technician", 1)  # the role, a little further
    other_role = plumber(0.90, 0.60, "Heating Engineer", 2)  # the skills, another role
    fillers = [plumber(0.86, 0.75, "Welder", 3), plumber(0.87, 0.80, "Bricklayer", 4)]
    got = ids(conn)
    assert got[0] == same_role and got.index(other_role) > got.index(same_role)
    # the weight is the DBA's, in jobmatch_settings; 0 turns role vectors off
    conn.execute("UPDATE jobmatch_settings SET rank_role_weight = 0")
    assert ids(conn)[:2] == [other_role, same_role]
    assert set(ids(conn)) == {same_role, other_role, *fillers}


def test_rows_without_role_vectors_are_still_matched_with_a_neutral_role_term(conn, plumber):
    same_role = plumber(0.895, 0.95, "Drainage Technician", 1)
    other_role = plumber(0.90, 0.60, "Heating Engineer", 2)
    unknown = plumber(0.897, None, "Drain Layer", 3)  # no role vector yet: neutral
    plumber(0.86, 0.75, "Welder", 4)
    got = ids(conn)
    assert got.index(same_role) < got.index(unknown) < got.index(other_role)
    # a seeker without a role vector (mid-migration): ranked by the rest alone
    conn.execute("UPDATE user_preferences SET user_role_embedding = NULL")
    with_role_off = ids(conn)
    conn.execute("UPDATE jobmatch_settings SET rank_role_weight = 0")
    assert with_role_off == ids(conn) and with_role_off[0] == other_role
    scores = [r[0] for r in conn.execute("SELECT match_score FROM match_jobs(1, 10)")]
    assert all(0 <= s <= 100 for s in scores)
