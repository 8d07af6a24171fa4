"""The embedding_health view: coverage, queue, dead letters, status words."""

from support.data import MODEL, job, unit, user
from jobmatch import queue


def health(conn) -> dict:
    cur = conn.execute("SELECT * FROM embedding_health")
    return dict(zip([c.name for c in cur.description], cur.fetchone()))


def embed_all(conn):
    rows = queue.claim(conn, "w", 1000)
    queue.complete(conn, "w", MODEL, rows, [unit(i) for i in range(len(rows))])


def test_empty_database_is_excellent(conn):
    h = health(conn)
    assert (h["users_total"], h["jobs_in_window"], h["queue_depth"], h["status"]) == \
        (0, 0, 0, "EXCELLENT")


def test_coverage_queue_and_status_words(conn):
    for i in range(10):
        user(conn, i + 1, job_roles=[f"Role {i}"])
        job(conn, title=f"Job {i}")
    old = job(conn, title="Old job")
    conn.execute("UPDATE canonical_jobs SET posted_date = now() - interval '70 days'"
                 " WHERE id = %s", [old])
    h = health(conn)
    assert (h["users_embedded"], h["jobs_in_window"], h["queue_depth"]) == (0, 10, 21)
    assert h["status"] == "NEEDS ATTENTION" and h["oldest_pending_age"] is not None
    embed_all(conn)
    assert health(conn)["status"] == "EXCELLENT"
    # 3 of 10 users change their text: their vectors no longer count
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Changed'] WHERE user_id <= 3")
    h = health(conn)
    assert (h["users_embedded"], h["user_coverage_pct"], h["job_coverage_pct"]) == (7, 70, 100)
    assert h["status"] == "GOOD"


def test_dead_letters_and_leases_are_counted(conn):
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = 1")
    user(conn, 1, job_roles=["A"])
    user(conn, 2, job_roles=["B"])
    rows = queue.claim(conn, "w", 1)
    queue.fail(conn, "w", rows, "boom")
    queue.claim(conn, "w", 1)
    h = health(conn)
    assert (h["dead_lettered"], h["queue_depth"], h["queue_leased"]) == (1, 1, 1)


def test_vectors_of_another_model_do_not_count(conn):
    user(conn, 1, job_roles=["A"])
    conn.execute("DELETE FROM embedding_queue")
    conn.execute("UPDATE user_preferences SET user_embedding = %s,"
                 " embedding_model = 'text-embedding-3-small', embedding_version = 1",
                 [unit(1, dims=1536)])
    assert health(conn)["users_embedded"] == 0
