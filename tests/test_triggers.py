"""Triggers mark rows dirty in embedding_queue exactly when their profile
text changes, and wake the worker with small, few notifications."""

import psycopg

from support.data import job, queue_rows, unit, user
from jobmatch import queue


def notifications(dsn, action) -> list:
    """Runs action() while a separate session LISTENs; returns what arrived."""
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN jobmatch_embedding_queue")
        action()
        return list(listener.notifies(timeout=0.5))


def test_insert_enqueues_jobs_and_users(conn):
    j = job(conn, title="Welder")
    user(conn, 7, job_roles=["Welder"])
    assert queue_rows(conn) == [("job", j), ("user", 7)]


def test_update_enqueues_only_when_text_changes(conn):
    j = job(conn, title="Welder")
    user(conn, 7, job_roles=["Welder"])
    conn.execute("DELETE FROM embedding_queue")
    # posted_date and the vector columns are not part of the profile text
    conn.execute("UPDATE canonical_jobs SET posted_date = now() - interval '1 day'")
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Welder']")
    conn.execute("UPDATE user_preferences SET technical_skills = ARRAY[NULL, ' ']")
    assert queue_rows(conn) == []
    conn.execute("UPDATE canonical_jobs SET title = 'Senior Welder'")
    conn.execute("UPDATE user_preferences SET technical_skills = ARRAY['TIG']")
    assert queue_rows(conn) == [("job", j), ("user", 7)]


def test_burst_of_edits_coalesces_into_one_row(conn):
    user(conn, 1, job_roles=["Cook"])
    for i in range(5):
        conn.execute("UPDATE user_preferences SET job_roles = %s", [[f"Cook {i}"]])
    assert conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0] == 1


def test_new_text_resets_backoff_of_a_failing_row(conn):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w", 10)
    queue.fail(conn, "w", rows, "boom")
    before = conn.execute("SELECT attempts, run_after > now() FROM embedding_queue").fetchone()
    assert before == (1, True)
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef']")
    after = conn.execute("SELECT attempts, run_after <= now(), last_error FROM embedding_queue"
                         ).fetchone()
    assert after == (0, True, None)


def test_vector_write_back_does_not_re_enqueue(conn):
    user(conn, 1, job_roles=["Cook"])
    job(conn, title="Cook")
    rows = queue.claim(conn, "w", 10)
    assert queue.complete(conn, "w", "multilingual-e5-small", rows,
                          [unit(i) for i in range(len(rows))]) == 2
    assert queue_rows(conn) == []


def test_an_edit_after_the_write_back_in_the_same_transaction_is_queued(conn):
    # The write-back's rows are checked by hash, not skipped: an application
    # edit later in the same transaction is still queued.
    user(conn, 1, job_roles=["Cook"])
    j = job(conn, title="Cook")
    rows = queue.claim(conn, "w", 10)
    with conn.transaction():
        conn.execute("SELECT complete_embeddings('w', 'multilingual-e5-small', %s, %s, %s, %s)",
                     [[r.entity_type for r in rows], [r.entity_id for r in rows],
                      [r.text_hash for r in rows], [unit(i) for i in range(len(rows))]])
        conn.execute("UPDATE canonical_jobs SET title = 'Head Cook'")
        conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef']")
    assert queue_rows(conn) == [("job", j), ("user", 1)]


def test_delete_removes_queue_and_dead_letter_rows(conn):
    j = job(conn, title="Cook")
    user(conn, 1, job_roles=["Cook"])
    conn.execute("INSERT INTO embedding_dead_letter (entity_type, entity_id, attempts,"
                 " enqueued_at) VALUES ('user', 1, 8, now())")
    conn.execute("DELETE FROM canonical_jobs WHERE id = %s", [j])
    conn.execute("DELETE FROM user_preferences WHERE user_id = 1")
    assert queue_rows(conn) == []
    assert conn.execute("SELECT count(*) FROM embedding_dead_letter").fetchone()[0] == 0


def test_truncate_empties_that_tables_queue(conn):
    job(conn, title="Cook")
    user(conn, 1, job_roles=["Cook"])
    conn.execute("TRUNCATE canonical_jobs")
    assert queue_rows(conn) == [("user", 1)]


def test_changed_id_moves_the_queue_row(conn):
    user(conn, 1, job_roles=["Cook"])
    conn.execute("UPDATE user_preferences SET user_id = 2")
    assert queue_rows(conn) == [("user", 2)]


def test_bulk_insert_sends_one_small_notification(conn, dsn):
    def bulk():
        conn.execute("INSERT INTO canonical_jobs (title, ai_required_skills)"
                     " SELECT 'Job ' || g, ARRAY['Skill ' || g] FROM generate_series(1, 20000) g")
    got = notifications(dsn, bulk)
    assert [(n.channel, n.payload) for n in got] == [("jobmatch_embedding_queue", "job")]
    assert conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0] == 20000


def test_copy_load_sends_one_notification(conn, dsn):
    def copy():
        with conn.cursor().copy("COPY user_preferences (user_id, job_roles) FROM STDIN") as cp:
            for i in range(1, 5001):
                cp.write_row((i, ["Nurse"]))
    assert len(notifications(dsn, copy)) == 1


def test_unchanged_update_sends_no_notification(conn, dsn):
    user(conn, 1, job_roles=["Cook"])
    conn.execute("DELETE FROM embedding_queue")
    got = notifications(dsn, lambda: conn.execute(
        "UPDATE user_preferences SET job_roles = ARRAY['Cook']"))
    assert got == []
