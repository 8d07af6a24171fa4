"""A text change is never silently lost, and the write-back refuses what
would corrupt matching: vectors of an old text are found by the refresh's
sweep and counted as not covered; duplicate entities and vectors that are
zero in pgvector's single-precision arithmetic are refused."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from support.data import MODEL, job, queue_rows, unit, user
from jobmatch import queue


def embed_all(conn) -> None:
    rows = queue.claim(conn, "w", 1000)
    assert queue.complete(conn, "w", MODEL, rows, [unit(i) for i in range(len(rows))]) \
        == len(rows)
    assert queue_rows(conn) == []


def health(conn) -> tuple:
    return conn.execute("SELECT users_embedded, users_total, jobs_embedded, jobs_in_window,"
                        " status FROM embedding_health").fetchone()


@pytest.mark.parametrize("bypass", [
    "ALTER TABLE {table} DISABLE TRIGGER USER",
    "SET session_replication_role = replica",
])
def test_a_text_changed_with_the_triggers_bypassed_is_found_and_requeued(conn, bypass):
    for uid in range(1, 6):
        user(conn, uid, job_roles=[f"Cook {uid}"])
    j = job(conn, title="Cook", posted_date="now()")
    embed_all(conn)
    assert health(conn) == (5, 5, 1, 1, "EXCELLENT")
    for table in ["user_preferences", "canonical_jobs"]:
        conn.execute(bypass.format(table=table))
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Welder'] WHERE user_id = 4")
    conn.execute("UPDATE canonical_jobs SET title = 'Welder'")
    conn.execute("RESET session_replication_role")
    for table in ["user_preferences", "canonical_jobs"]:
        conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    assert queue_rows(conn) == []  # the triggers saw nothing
    # health no longer counts them as covered
    assert health(conn) == (4, 5, 0, 1, "NEEDS ATTENTION")
    # the sweep goes a bounded number of rows a call, and wraps around
    conn.execute("UPDATE jobmatch_settings SET stale_sweep_rows = 2")
    found = sum(conn.execute("SELECT enqueue_stale_embeddings()").fetchone()[0]
                for _ in range(3))
    assert found == 2
    assert queue_rows(conn) == [("job", j), ("user", 4)]
    (text,) = [r.text for r in queue.claim(conn, "w", 10) if r.entity_type == "user"]
    assert text == "Seeking roles: Welder"


def test_the_sweep_costs_a_bounded_number_of_rows_per_call(conn):
    for uid in range(1, 11):
        user(conn, uid, job_roles=["Cook"])
    embed_all(conn)
    conn.execute("UPDATE jobmatch_settings SET stale_sweep_rows = 4")
    cursors = []
    for _ in range(4):
        conn.execute("SELECT enqueue_stale_embeddings()")
        cursors.append(conn.execute("SELECT last_id FROM jobmatch_stale_sweep"
                                    " WHERE entity_type = 'user'").fetchone()[0])
    assert cursors == [4, 8, None, 4]


def test_complete_refuses_two_vectors_for_one_entity(conn):
    user(conn, 1, job_roles=["Cook"])
    (row,) = queue.claim(conn, "w", 10)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="user 1 appears 2 times"):
        queue.complete(conn, "w", MODEL, [row, row], [unit(1), unit(2)])
    assert conn.execute("SELECT user_embedding FROM user_preferences").fetchone() == (None,)


@pytest.mark.parametrize("scale", [1e-30, 1e-22])
def test_complete_refuses_a_vector_whose_norm_underflows_in_single_precision(conn, scale):
    # Non-zero in double precision, zero for pgvector: every cosine with it
    # would read 1.0, an unrelated job offered as "Semantic match: 100%".
    user(conn, 1, job_roles=["Cook"])
    (row,) = queue.claim(conn, "w", 10)
    tiny = (unit(1) * scale).astype(np.float32)
    assert np.linalg.norm(tiny.astype(np.float64)) > 0
    with pytest.raises(psycopg.errors.DataException, match="underflows"):
        queue.complete(conn, "w", MODEL, [row], [tiny])
    assert conn.execute("SELECT user_embedding FROM user_preferences").fetchone() == (None,)


def test_an_ordinary_small_vector_is_still_accepted(conn):
    user(conn, 1, job_roles=["Cook"])
    (row,) = queue.claim(conn, "w", 10)
    assert queue.complete(conn, "w", MODEL, [row], [unit(1) * 1e-3]) == 1


@pytest.mark.parametrize("counts", [(-1, 0, 0), (0, -5, 0), (0, 0, -1000)])
def test_usage_counts_never_go_down(conn, counts):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="non-negative"):
        queue.record_usage(conn, MODEL, *counts)


def test_rows_modified_without_a_text_change_stay_covered_and_are_stamped(conn):
    # Health and the sweep rebuild the text only of rows modified since their
    # vector was written; the sweep stamps those it finds current, so the next
    # look costs nothing.
    for uid in range(1, 4):
        user(conn, uid, job_roles=["Cook"])
    embed_all(conn)
    unmodified = "SELECT count(*) FROM user_preferences WHERE xmin = embedding_xmin"
    assert conn.execute(unmodified).fetchone() == (3,)
    conn.execute("UPDATE user_preferences SET user_job_input = user_job_input")  # same text
    assert conn.execute(unmodified).fetchone() == (0,)
    assert health(conn)[:2] == (3, 3)
    assert conn.execute("SELECT enqueue_stale_embeddings()").fetchone() == (0,)
    assert conn.execute(unmodified).fetchone() == (3,)
    assert queue_rows(conn) == []
