"""`jobmatch worker` when the provider misbehaves: retries, failed attempts,
dead letters, one bad row, a rejected key. Never a zero or partial vector."""

import signal
import socket
import time

import pytest

from support.data import job
from support.common import wait_for
from support.worker import (KEY, assert_embedded, assert_no_bad_vectors, events, fast_retries,
                            leased, messages, pending, run_worker, stored)


def jobs(conn, n=4, word="Welder") -> list[int]:
    return [job(conn, title=f"{word} {i}", ai_required_skills=["TIG", f"skill{i}"])
            for i in range(n)]


def queue_state(conn) -> list[tuple]:
    return conn.execute("SELECT entity_id, attempts, last_error, locked_by FROM embedding_queue"
                        " ORDER BY entity_id").fetchall()


def dead_letters(conn) -> list[tuple]:
    return conn.execute("SELECT entity_id, attempts, last_error FROM embedding_dead_letter"
                        " ORDER BY entity_id").fetchall()


@pytest.mark.parametrize("kind", ["429", "500", "timeout", "wrong_dim", "wrong_count", "zero"])
def test_transient_errors_are_retried(oconn, dsn, server, kind):
    jobs(oconn)
    server.fail_next(kind, times=2, retry_after=0.05 if kind == "429" else None)
    proc = run_worker(dsn, server, "--once", "--openai-timeout", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert server.faults == [kind, kind]
    assert_embedded(oconn)
    assert pending(oconn) == 0 and dead_letters(oconn) == []
    # every attempt is paid for, and recorded
    assert oconn.execute("SELECT requests FROM embedding_usage").fetchone()[0] == 3


def test_429_honours_retry_after(oconn, dsn, server):
    jobs(oconn, n=1)
    server.fail_next("429", retry_after=1.5)
    started = time.monotonic()
    proc = run_worker(dsn, server, "--once")
    assert proc.returncode == 0 and pending(oconn) == 0
    assert [r["fault"] for r in server.requests] == ["429", None]
    assert time.monotonic() - started >= 1.5  # it waited as told, not its own 0-0.5 s backoff


@pytest.mark.parametrize("kind", ["500", "wrong_dim", "wrong_count", "zero"])
def test_persistent_failure_counts_attempts_then_dead_letters(oconn, dsn, server, kind):
    ids = jobs(oconn, n=3)
    fast_retries(oconn, max_attempts=2)
    server.fail_next(kind, times=100)
    proc = run_worker(dsn, server, "--once", "--max-retries", "1")
    assert proc.returncode == 1  # --once: the provider is down, say so
    assert [(i, a, lock) for i, a, _, lock in queue_state(oconn)] == [(i, 1, None) for i in ids]
    assert all(err for _, _, err, _ in queue_state(oconn))
    proc = run_worker(dsn, server, "--once", "--max-retries", "1")
    assert proc.returncode == 1
    assert pending(oconn) == 0
    dead = dead_letters(oconn)
    assert [(i, a) for i, a, _ in dead] == [(i, 2) for i in ids]
    assert all(("500" if kind == "500" else "bad response") in err for _, _, err in dead)
    assert all(v[3] is None for v in stored(oconn).values())  # no vector for a failed row
    assert_no_bad_vectors(oconn)


def test_one_bad_row_does_not_block_its_batch(oconn, dsn, server):
    good = jobs(oconn, n=7)
    bad = job(oconn, title="Welder POISON")
    fast_retries(oconn, max_attempts=2)
    server.reject_inputs_containing = "POISON"
    proc = run_worker(dsn, server, "--once", "--batch-size", "10")
    assert proc.returncode == 0, proc.stderr
    assert_embedded(oconn, [("job", i) for i in good])
    # bisection sent each good text until it succeeded exactly once
    assert set(server.input_counts().values()) == {1} and len(server.inputs) == 14  # 2 a row
    assert server.faults.count("reject") >= 4  # 8 rows -> 4 -> 2 -> 1, then the retry
    assert stored(oconn)[("job", bad)][3] is None
    ((dead_id, attempts, error),) = dead_letters(oconn)
    assert (dead_id, attempts) == (bad, 2) and "400" in error and "POISON" in error
    assert pending(oconn) == 0
    assert_no_bad_vectors(oconn)


def test_provider_down_pauses_then_recovers(oconn, dsn, server, workers):
    jobs(oconn, n=2)
    oconn.execute("UPDATE jobmatch_settings SET queue_backoff_base = '0 seconds'")
    server.fail_next("503", times=3)
    w = workers(dsn, server, "--max-retries", "0", "--pause-seconds", "0.1",
                "--poll-interval", "0.2")
    wait_for(lambda: pending(oconn) == 0, what="recovery")
    assert w.stop() == 0, w.stderr
    assert_embedded(oconn)
    assert messages(w.stderr).count("provider unavailable, pausing") == 3
    assert dead_letters(oconn) == []


def test_rejected_key_releases_and_exits_3(oconn, dsn, server, workers):
    ids = jobs(oconn, n=3)
    w = workers(dsn, server, key="sk-wrong-key-0000")
    assert w.wait(timeout=15) == 3
    assert [(i, a, err, lock) for i, a, err, lock in queue_state(oconn)] == \
        [(i, 0, None, None) for i in ids]  # nothing failed, nothing leased
    assert leased(oconn) == 0 and dead_letters(oconn) == []
    assert all(v[3] is None for v in stored(oconn).values())
    (error,) = [e for e in events(w.stderr) if e["level"] == "error"]
    assert "API key" in error["msg"] and error["exit_code"] == 3
    assert "sk-wrong-key-0000" not in w.stderr and KEY not in w.stderr


def test_sigterm_during_retries_releases_the_batch(oconn, dsn, server, workers):
    ids = jobs(oconn, n=3)
    server.fail_next("500", times=1000)
    w = workers(dsn, server, "--max-retries", "20")
    wait_for(lambda: len(server.faults) >= 3, what="the worker to be retrying")
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=5) == 0, w.stderr
    # released, not failed: no attempt counted, nothing leased
    assert queue_state(oconn) == [(i, 0, None, None) for i in ids]
    assert events(w.stderr)[-1]["released"] == 0  # the batch was given back before


def test_lost_database_connections_are_reopened(oconn, dsn, server, workers):
    w = workers(dsn, server, "--worker-id", "reconnect-test")
    sessions = ("SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'jobmatch-worker reconnect-test'")
    wait_for(lambda: oconn.execute(sessions).fetchone()[0] == 3, what="the worker's sessions")
    oconn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE application_name = 'jobmatch-worker reconnect-test'")
    ids = jobs(oconn, n=2)
    try:  # generous: a loaded CI machine may refuse a few reconnects (capped backoff)
        wait_for(lambda: pending(oconn) == 0, timeout=45, what="the reconnected worker")
    except AssertionError:
        w.proc.kill()
        _, log = w.proc.communicate(timeout=15)  # raw: it may hold a traceback
        raise AssertionError(f"the worker never came back; its log:\n{log}") from None
    assert_embedded(oconn, [("job", i) for i in ids])
    assert w.stop() == 0, w.stderr
    # which path notices depends on timing: the loop, or a connect still in progress
    assert {"database connection lost, reconnecting", "database unreachable, retrying"} \
        & set(messages(w.stderr))


def test_unreachable_database_with_once_exits_1(server):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_worker(f"postgresql://nobody@127.0.0.1:{port}/none", server, "--once")
    assert proc.returncode == 1 and "cannot connect to the database" in proc.stderr


def test_refresh_leaves_dead_letters_alone(oconn, dsn, server):
    bad = job(oconn, title="Welder POISON")
    fast_retries(oconn, max_attempts=1)
    server.reject_inputs_containing = "POISON"
    assert run_worker(dsn, server, "--once").returncode == 0
    assert [d[0] for d in dead_letters(oconn)] == [bad]
    assert run_worker(dsn, server, "--once").returncode == 0  # refreshes at start
    assert server.faults.count("reject") == 1  # not sent again until someone requeues it


def test_refused_write_back_is_charged_to_its_own_batch(oconn, dsn, server):
    # Write-backs overlap the next batch's embedding: a write the database
    # refuses must count against the batch it belongs to, not the next one.
    ids = jobs(oconn, n=5)
    oconn.execute("""
        CREATE FUNCTION refuse_vector() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'no vector for %', NEW.title USING ERRCODE = 'check_violation';
        END $$;
        CREATE TRIGGER refuse_vector BEFORE UPDATE OF job_embedding ON canonical_jobs
        FOR EACH ROW WHEN (NEW.title = 'Welder 2' AND NEW.job_embedding IS NOT NULL)
        EXECUTE FUNCTION refuse_vector()""")
    fast_retries(oconn, max_attempts=1)
    proc = run_worker(dsn, server, "--once", "--batch-size", "1")
    assert proc.returncode == 0, proc.stderr
    assert [(i, a, e.startswith("database: ") and "Welder 2" in e)
            for i, a, e in dead_letters(oconn)] == [(ids[2], 1, True)]
    assert_embedded(oconn, [("job", i) for i in ids if i != ids[2]])
    assert pending(oconn) == 0
