"""Pay once per distinct text, and only for what can be matched: a claim
hands out only rows that need a new vector. A text that already has a
vector of the active model (the row's own after an edit is undone, or a
duplicate posting's) gets it, and its role vector, without an API call (a
stored vector without the role vector its role text asks for is not reused:
tests/test_role_vectors.py); jobs too old to ever be
matched and seekers with nothing to embed are not embedded. The ledger
counts what was saved."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np

from support.data import MODEL, job, queue_rows, unit, user
from jobmatch import queue


def usage(conn) -> tuple:
    return conn.execute("SELECT coalesce(sum(cached_inputs), 0), coalesce(sum(cached_tokens), 0),"
                        " coalesce(sum(skipped_inputs), 0) FROM embedding_usage").fetchone()


def vector(conn, table: str, key: str, value: int) -> np.ndarray:
    column = "job_embedding" if table == "canonical_jobs" else "user_embedding"
    (v,) = conn.execute(f"SELECT {column} FROM {table} WHERE {key} = %s", [value]).fetchone()
    return np.asarray(v.to_list() if hasattr(v, "to_list") else v)


def test_a_duplicate_posting_reuses_the_vector_of_the_same_text(conn):
    first = job(conn, title="Welder", ai_required_skills=["TIG"], posted_date="now()")
    (row,) = queue.claim(conn, "w", 10)
    assert queue.complete(conn, "w", MODEL, [row], [unit(1)], [unit(2)]) == 1
    # the same posting on another board, and a different one
    dup = job(conn, title="Welder", ai_required_skills=["TIG"], posted_date="now()")
    other = job(conn, title="Baker", posted_date="now()")
    claimed = queue.claim(conn, "w", 10)
    assert [r.entity_id for r in claimed] == [other]  # only the new text is paid for
    assert queue_rows(conn) == [("job", other)]
    assert np.allclose(vector(conn, "canonical_jobs", "id", dup), unit(1))
    assert conn.execute("SELECT job_embedding_hash FROM canonical_jobs WHERE id = %s",
                        [dup]).fetchone() == (row.text_hash,)
    cached_inputs, cached_tokens, _ = usage(conn)  # both texts of the row
    assert cached_inputs == 2 and cached_tokens >= (len(row.text) + len(row.role_text)) // 4
    assert first != dup


def test_an_edit_undone_before_the_worker_gets_to_it_costs_nothing(conn):
    user(conn, 1, job_roles=["Cook"])
    (row,) = queue.claim(conn, "w", 10)
    assert queue.complete(conn, "w", MODEL, [row], [unit(7)], [unit(8)]) == 1
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef']")
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Cook']")  # back again
    assert queue_rows(conn) == [("user", 1)]
    assert queue.claim(conn, "w", 10) == []
    assert queue_rows(conn) == []
    assert np.allclose(vector(conn, "user_preferences", "user_id", 1), unit(7))
    assert usage(conn)[0] == 2  # the profile and the role text


def test_jobs_too_old_to_be_matched_are_not_embedded(conn):
    # A backfill where 5 of 6 jobs are older than the window (+ margin):
    # 1/6 of the inputs are sent.
    new = [job(conn, title=f"Cook {i}", posted_date="now()") for i in range(2)]
    for i in range(10):
        job(conn, title=f"Old cook {i}",
            posted_date=datetime.now(timezone.utc) - timedelta(days=70 + i))
    claimed = queue.claim(conn, "w", 100)
    assert sorted(r.entity_id for r in claimed) == new
    assert queue_rows(conn) == [("job", i) for i in new]
    assert usage(conn)[2] == 10
    # nor queued again by the refresh
    queue.complete(conn, "w", MODEL, claimed, [unit(i) for i in range(len(claimed))])
    assert conn.execute("SELECT enqueue_stale_embeddings()").fetchone() == (0,)
    # a job reposted into the window is embedded by the refresh
    conn.execute("UPDATE canonical_jobs SET posted_date = now() WHERE title = 'Old cook 3'")
    assert conn.execute("SELECT enqueue_stale_embeddings()").fetchone() == (1,)


def test_a_seeker_with_nothing_to_embed_is_skipped_and_counted_as_covered(conn):
    user(conn, 1)  # nothing stated yet
    user(conn, 2, job_roles=["Cook"])
    claimed = queue.claim(conn, "w", 10)
    assert [r.entity_id for r in claimed] == [2]
    queue.complete(conn, "w", MODEL, claimed, [unit(1)])
    assert queue_rows(conn) == []
    assert conn.execute("SELECT users_embedded, users_total FROM embedding_health"
                        ).fetchone() == (2, 2)
    assert conn.execute("SELECT enqueue_stale_embeddings()").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM match_jobs(1, 10)").fetchone() == (0,)
    # once they say what they want, they are embedded
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Welder'] WHERE user_id = 1")
    assert [r.entity_id for r in queue.claim(conn, "w", 10)] == [1]


def test_health_shows_what_the_cache_and_the_window_rule_saved(conn, dsn):
    from support.cli import jobmatch

    job(conn, title="Welder", posted_date="now()")
    (row,) = queue.claim(conn, "w", 10)
    queue.complete(conn, "w", MODEL, [row], [unit(1)], [unit(2)])
    job(conn, title="Welder", posted_date="now()")
    job(conn, title="Old welder", posted_date=datetime.now(timezone.utc) - timedelta(days=90))
    assert queue.claim(conn, "w", 10) == []
    assert "saved: 2 inputs reused" in jobmatch(dsn, "health").stdout  # profile and role
    assert "1 not worth embedding" in jobmatch(dsn, "health").stdout


def test_spend_in_dollars_and_the_projected_cost_of_the_queue(conn):
    # the template database's model is local (free); price it like an API
    conn.execute("UPDATE embedding_models SET usd_per_million_tokens = 0.02 WHERE is_active")
    queue.record_usage(conn, MODEL, 2, 100, 5000)  # 50 tokens per input
    for uid in range(1, 5):
        user(conn, uid, job_roles=[f"Cook {uid}"])
    usd, saved = conn.execute("SELECT usd, usd_saved FROM embedding_spend").fetchone()
    assert float(usd) == 5000 * 0.02 / 1e6 and float(saved) == 0
    # 4 queued rows x 50 tokens x $0.02 per 1M
    assert float(conn.execute("SELECT queue_projected_usd FROM embedding_health").fetchone()[0]) \
        == 4 * 50 * 0.02 / 1e6
    assert conn.execute("SELECT reached FROM embedding_budget_state(%s, NULL, 0.0001)",
                        [MODEL]).fetchone() == (True,)
    assert conn.execute("SELECT reached FROM embedding_budget_state(%s, 10000, 0.001)",
                        [MODEL]).fetchone() == (False,)


def test_a_reduced_dimension_model_costs_what_its_model_costs(conn):
    conn.execute("SELECT set_embedding_model('text-embedding-3-small@512', 'openai', 512,"
                 " NULL, true)")
    assert conn.execute("SELECT usd_per_million_tokens, batch_usd_per_million_tokens"
                        " FROM embedding_models WHERE model = 'text-embedding-3-small@512'"
                        ).fetchone() == (Decimal("0.02"), Decimal("0.01"))
