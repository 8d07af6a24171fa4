"""The SQL queue API: claim, complete (stale-write protected), fail
(backoff, dead letter), release, requeue."""

import threading

import numpy as np
import psycopg
import pytest

from support.data import MODEL, job, queue_rows, unit, user
from jobmatch import queue


def test_claim_returns_text_and_hash_and_leases(conn):
    user(conn, 1, job_roles=["Cook"])
    (row,) = queue.claim(conn, "w1", 10, lease_seconds=60)
    assert (row.entity_type, row.entity_id, row.text) == ("user", 1, "Seeking roles: Cook")
    assert row.text_hash == conn.execute("SELECT jobmatch_text_hash(%s)", [row.text]).fetchone()[0]
    locked = conn.execute("SELECT locked_by, locked_until > now() + interval '50 s'"
                          " FROM embedding_queue").fetchone()
    assert locked == ("w1", True)
    assert queue.claim(conn, "w2", 10) == []  # leased rows are not handed out twice


def test_claim_respects_limit_and_priority(conn):
    for i in range(5):
        user(conn, i + 1, job_roles=["Cook"])
    conn.execute("UPDATE embedding_queue SET priority = 1 WHERE entity_id <= 3")
    rows = queue.claim(conn, "w", 2)
    assert sorted(r.entity_id for r in rows) == [4, 5]


def test_expired_lease_is_reclaimed(conn):
    user(conn, 1, job_roles=["Cook"])
    queue.claim(conn, "dead-worker", 10, lease_seconds=60)
    conn.execute("UPDATE embedding_queue SET locked_until = now() - interval '1 s'")
    (row,) = queue.claim(conn, "w2", 10)
    assert row.entity_id == 1


def test_two_sessions_claiming_concurrently_never_share_a_row(conn, dsn):
    conn.execute("INSERT INTO user_preferences (user_id, job_roles)"
                 " SELECT g, ARRAY['Role ' || g] FROM generate_series(1, 2000) g")
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def claimer(name):
        with psycopg.connect(dsn, autocommit=True) as c:
            barrier.wait()
            while rows := queue.claim(c, name, 50):
                claimed[name].extend(r.entity_id for r in rows)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    a, b = set(claimed["a"]), set(claimed["b"])
    assert not a & b
    assert len(a) + len(b) == len(claimed["a"]) + len(claimed["b"]) == 2000
    assert a and b  # both sessions got work


def test_complete_writes_vector_text_model_and_dequeues(conn):
    jid = job(conn, title="Cook")
    rows = queue.claim(conn, "w", 10)
    v, role = unit(1), unit(2)
    assert queue.complete(conn, "w", MODEL, rows, [v], [role]) == 1
    got = conn.execute("SELECT job_embedding, job_role_embedding, job_embedding_text,"
                       " job_embedding_model, job_embedding_hash,"
                       " embedding_version = (SELECT profile_text_version FROM jobmatch_settings),"
                       " job_embedding_updated_at IS NOT NULL"
                       " FROM canonical_jobs WHERE id = %s", [jid]).fetchone()
    assert np.allclose(got[0].to_numpy(), v) and np.allclose(got[1].to_numpy(), role)
    # stamped with the current text version (3 since migration 0014)
    (version,) = conn.execute("SELECT profile_text_version FROM jobmatch_settings").fetchone()
    assert version == 3
    assert got[2:] == ("Job title: Cook", MODEL, rows[0].text_hash, True, True)
    assert queue_rows(conn) == []


def test_complete_skips_rows_whose_text_changed_and_keeps_them_queued(conn):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w", 10)
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef']")  # while in flight
    assert queue.complete(conn, "w", MODEL, rows, [unit(1)]) == 0
    assert conn.execute("SELECT user_embedding FROM user_preferences").fetchone()[0] is None
    (again,) = queue.claim(conn, "w", 10)  # released at once, with the new text
    assert again.text == "Seeking roles: Chef"
    assert queue.complete(conn, "w", MODEL, [again], [unit(2)]) == 1


def test_complete_of_a_deleted_row_is_a_no_op(conn):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w", 10)
    conn.execute("DELETE FROM user_preferences")
    assert queue.complete(conn, "w", MODEL, rows, [unit(1)]) == 0
    assert queue_rows(conn) == []


def test_complete_in_a_mixed_batch_writes_only_current_rows(conn):
    user(conn, 1, job_roles=["Cook"])
    user(conn, 2, job_roles=["Baker"])
    rows = queue.claim(conn, "w", 10)
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef'] WHERE user_id = 2")
    assert queue.complete(conn, "w", MODEL, rows, [unit(1), unit(2)]) == 1
    assert queue_rows(conn) == [("user", 2)]


@pytest.mark.parametrize("bad, message", [
    (np.zeros(384, dtype=np.float32), "zero vector"),
    (unit(1, dims=383), "383 dimensions, expected 384"),
])
def test_complete_refuses_bad_vectors(conn, bad, message):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w", 10)
    with pytest.raises(psycopg.errors.DataException, match=message):
        queue.complete(conn, "w", MODEL, rows, [bad])
    assert conn.execute("SELECT user_embedding FROM user_preferences").fetchone()[0] is None


def test_complete_refuses_vectors_of_another_model(conn):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w", 10)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="text-embedding-3-small"):
        queue.complete(conn, "w", "text-embedding-3-small", rows, [unit(1)])


def test_fail_backs_off_exponentially_with_a_cap(conn):
    conn.execute("UPDATE jobmatch_settings SET queue_backoff_base = '10 s',"
                 " queue_backoff_cap = '60 s', queue_max_attempts = 100")
    user(conn, 1, job_roles=["Cook"])
    delays = []
    for _ in range(5):
        conn.execute("UPDATE embedding_queue SET run_after = now()")
        rows = queue.claim(conn, "w", 10)
        queue.fail(conn, "w", rows, "provider said no")
        delays.append(conn.execute("SELECT extract(epoch FROM run_after - now())"
                                   " FROM embedding_queue").fetchone()[0])
    # 10, 20, 40, 60 (cap), 60 (cap) seconds, each with +-25% jitter
    for got, want in zip(delays, [10, 20, 40, 60, 60]):
        assert 0.74 * want <= float(got) <= 1.26 * want
    assert conn.execute("SELECT attempts, last_error, locked_by FROM embedding_queue"
                        ).fetchone() == (5, "provider said no", None)


def test_attempt_cap_moves_row_to_dead_letter_with_its_error(conn):
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = 2,"
                 " queue_backoff_base = '0 s'")
    user(conn, 1, job_roles=["Cook"])
    user(conn, 2, job_roles=["Baker"])
    rows = queue.claim(conn, "w", 10)
    assert queue.fail(conn, "w", rows, "first") == 0
    rows = queue.claim(conn, "w", 10)
    assert queue.fail(conn, "w", rows[:1], "second") == 1
    assert conn.execute("SELECT entity_id, attempts, last_error FROM embedding_dead_letter"
                        ).fetchall() == [(rows[0].entity_id, 2, "second")]
    assert queue_rows(conn) == [("user", rows[1].entity_id)]  # the other row is unaffected


def test_fail_dead_letters_only_rows_this_worker_holds(conn):
    user(conn, 1, job_roles=["Cook"])
    user(conn, 2, job_roles=["Baker"])
    mine = queue.claim(conn, "w1", 1)
    theirs = queue.claim(conn, "w2", 1)
    conn.execute("UPDATE embedding_queue SET attempts = 5")
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = 3")  # an admin lowers the cap
    assert queue.fail(conn, "w1", mine + theirs, "boom") == 1
    assert conn.execute("SELECT entity_id, attempts, last_error FROM embedding_dead_letter"
                        ).fetchall() == [(mine[0].entity_id, 6, "boom")]
    assert conn.execute("SELECT entity_id, locked_by FROM embedding_queue").fetchall() == \
        [(theirs[0].entity_id, "w2")]


def test_refresh_skips_dead_letters(conn):
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = 1")
    user(conn, 1, job_roles=["Cook"])
    queue.fail(conn, "w", queue.claim(conn, "w", 1), "poison")
    assert conn.execute("SELECT enqueue_stale_embeddings()").fetchone() == (0,)


def test_fail_ignores_rows_leased_by_another_worker(conn):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w1", 10)
    queue.fail(conn, "w2", rows, "not mine")
    assert conn.execute("SELECT attempts, locked_by FROM embedding_queue").fetchone() == (0, "w1")


def test_release_gives_leases_back_without_an_attempt(conn):
    user(conn, 1, job_roles=["Cook"])
    user(conn, 2, job_roles=["Baker"])
    rows = queue.claim(conn, "w", 10)
    assert queue.release(conn, "w", rows[:1]) == 1
    assert queue.release(conn, "w") == 1
    assert conn.execute("SELECT count(*) FROM embedding_queue WHERE locked_by IS NULL"
                        " AND attempts = 0").fetchone()[0] == 2


def test_requeue_dead_letters(conn):
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = 1")
    user(conn, 1, job_roles=["Cook"])
    queue.fail(conn, "w", queue.claim(conn, "w", 10), "boom")
    assert queue_rows(conn) == []
    assert conn.execute("SELECT requeue_dead_letters()").fetchone()[0] == 1
    assert queue_rows(conn) == [("user", 1)]
    assert conn.execute("SELECT count(*) FROM embedding_dead_letter").fetchone()[0] == 0


def test_claim_rejects_bad_arguments(conn):
    for args in [("w", 0, "1 min"), ("w", None, "1 min"), (None, 1, "1 min"), ("w", 1, "0 s")]:
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SELECT * FROM claim_embedding_batch(%s, %s, %s::interval)", args)


def test_usage_ledger_accumulates_per_day_and_model(conn):
    queue.record_usage(conn, MODEL, 1, 10, 100)
    queue.record_usage(conn, MODEL, 2, 5, 50)
    assert conn.execute("SELECT requests, inputs, tokens FROM embedding_usage"
                        " WHERE day = current_date AND model = %s", [MODEL]).fetchone() == (3, 15, 150)


def test_model_is_recorded_once_and_a_different_one_is_refused(conn):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="embeds with multilingual"):
        conn.execute("SELECT set_embedding_model('text-embedding-3-small', 'openai', 1536)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="1536 dimensions, not 256"):
        conn.execute("SELECT set_embedding_model('text-embedding-3-small', 'openai', 256)")


def test_switching_model_requeues_every_row_at_low_priority(conn):
    user(conn, 1, job_roles=["Cook"])
    queue.complete(conn, "w", MODEL, queue.claim(conn, "w", 10), [unit(1)])
    conn.execute("SELECT set_embedding_model('text-embedding-3-small', 'openai', 1536,"
                 " NULL, true)")
    assert conn.execute("SELECT entity_id, priority FROM embedding_queue").fetchall() == [(1, 1)]


def test_an_edit_to_a_leased_row_frees_it_from_the_old_batch(conn):
    user(conn, 1, job_roles=["Cook"])
    old = queue.claim(conn, "w1", 10)
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef']")
    # the old batch's failure must not charge the new text
    queue.fail(conn, "w1", old, "provider said no")
    assert conn.execute("SELECT attempts, last_error FROM embedding_queue").fetchone() == (0, None)
    (new,) = queue.claim(conn, "w2", 10)  # claimable at once, not after the old lease
    assert new.text == "Seeking roles: Chef"


def test_write_back_skips_a_row_the_application_holds_and_parks_its_vector(conn, other):
    # 30 rows, one held by a long application transaction: the 29 free rows
    # are written at once, the held one waits on its queue row with its
    # vector, is never handed out to be embedded (paid for) again while held,
    # and is written by a later claim once the application lets go.
    for uid in range(1, 31):
        user(conn, uid, job_roles=[f"Cook {uid}"])
    rows = queue.claim(conn, "w", 100)
    assert len(rows) == 30
    with other.transaction():
        other.execute("SELECT 1 FROM user_preferences WHERE user_id = 7 FOR UPDATE")
        assert queue.complete(conn, "w", MODEL, rows, [unit(i) for i in range(30)]) == 29
        assert queue_rows(conn) == [("user", 7)]
        parked = conn.execute("SELECT locked_by, parked_hash = %s, run_after > now()"
                              " FROM embedding_queue", [rows[6].text_hash]).fetchone()
        assert parked == (None, True, True)
        conn.execute("UPDATE embedding_queue SET run_after = now()")
        assert queue.claim(conn, "w2", 100) == []  # still held: not embedded again
        assert queue_rows(conn) == [("user", 7)]
    conn.execute("UPDATE embedding_queue SET run_after = now()")
    assert queue.claim(conn, "w2", 100) == []  # written from the parked vector
    assert queue_rows(conn) == []
    stored = conn.execute("SELECT user_embedding FROM user_preferences WHERE user_id = 7"
                          ).fetchone()[0]
    assert np.allclose(np.asarray(stored.to_list()), unit(6))


def test_a_parked_vector_of_an_old_text_is_dropped_and_the_new_text_embedded(conn, other):
    user(conn, 1, job_roles=["Cook"])
    rows = queue.claim(conn, "w", 10)
    with other.transaction():
        other.execute("SELECT 1 FROM user_preferences WHERE user_id = 1 FOR UPDATE")
        assert queue.complete(conn, "w", MODEL, rows, [unit(1)]) == 0
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef']")
    (new,) = queue.claim(conn, "w", 10)
    assert new.text == "Seeking roles: Chef"
    assert conn.execute("SELECT user_embedding FROM user_preferences").fetchone() == (None,)
