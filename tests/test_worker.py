"""`jobmatch worker`: the happy path, NOTIFY, signals, refresh, budget,
logs and start-up checks, against the real database and a FakeOpenAI."""

import signal
import threading
import time
from decimal import Decimal

import pytest

from support.data import job, user
from support.common import wait_for
from support.worker import (KEY, MODEL, assert_embedded, assert_no_bad_vectors, events, leased,
                            messages, pending, run_worker, stored)

from jobmatch.worker import Settings, StopSignal, Worker


def seed(conn, jobs=3, users=2) -> None:
    for i in range(jobs):
        job(conn, title=f"Data Scientist {i}", ai_required_skills=["Python", "SQL", f"tool{i}"])
    for i in range(users):
        user(conn, i + 1, job_roles=["Data Scientist"], technical_skills=["Python", "SQL"],
             preferred_locations=[f"City{i}"])


def test_once_end_to_end(oconn, dsn, server):
    seed(oconn)
    proc = run_worker(dsn, server, "--once")
    assert proc.returncode == 0, proc.stderr
    assert_embedded(oconn)
    assert pending(oconn) == 0 and leased(oconn) == 0
    assert {r[0] for r in oconn.execute("SELECT match_method FROM match_jobs(1, 10)")} == {"semantic"}
    requests, inputs, tokens = oconn.execute(
        "SELECT requests, inputs, tokens FROM embedding_usage"
        " WHERE day = current_date AND model = %s", [MODEL]).fetchone()
    # the two seekers differ only in their place, a filter and not part of the
    # text (issue #13): one text, sent once for both; each row's profile and
    # role texts in one request: 3 jobs x 2 + the seekers' 2
    texts = stored(oconn)
    assert texts[("user", 1)][0] == texts[("user", 2)][0]
    assert (requests, inputs) == (1, 8) and tokens > 0
    assert {"worker started", "drained", "worker stopped"} <= set(messages(proc.stderr))


def test_once_on_an_empty_queue_exits_0(oconn, dsn, server):
    proc = run_worker(dsn, server, "--once")
    assert proc.returncode == 0, proc.stderr
    assert server.requests == []


def test_notify_wakes_the_worker(oconn, dsn, server, workers):
    seed(oconn, jobs=1, users=1)
    w = workers(dsn, server, "--poll-interval", "60", "--refresh-interval", "0")
    wait_for(lambda: pending(oconn) == 0, what="the initial drain")
    oconn.execute("UPDATE user_preferences SET technical_skills = ARRAY['Rust', 'Go']"
                  " WHERE user_id = 1")
    # Polling is a minute away: only the NOTIFY can explain a quick vector.
    wait_for(lambda: stored(oconn)[("user", 1)][1] == stored(oconn)[("user", 1)][0],
             timeout=10, what="the new vector")
    assert_embedded(oconn)
    started = time.monotonic()
    assert w.stop() == 0, w.stderr
    assert time.monotonic() - started < 5  # the stop wakes an idle worker at once


@pytest.mark.slow
def test_sigterm_finishes_or_releases_the_batch(oconn, dsn, server, workers):
    for i in range(12):
        job(oconn, title=f"Welder {i}")
    server.latency = 1.0
    w = workers(dsn, server, "--batch-size", "4", "--request-size", "4")
    wait_for(lambda: leased(oconn) > 0, what="a batch in flight")
    w.signal(signal.SIGTERM)
    assert w.wait() == 0, w.stderr
    assert leased(oconn) == 0  # nothing left leased by it
    assert oconn.execute("SELECT count(*) FROM embedding_queue WHERE locked_by IS NOT NULL"
                         " OR attempts > 0").fetchone()[0] == 0
    done = [k for k, v in stored(oconn).items() if v[3] is not None]
    assert len(done) + pending(oconn) == 12 and len(done) >= 4  # the batch in flight finished
    assert_embedded(oconn, done)
    last = events(w.stderr)[-1]
    assert last["msg"] == "worker stopped" and last["signal"] == signal.SIGTERM


def test_second_signal_exits_at_once(oconn, dsn, server, workers):
    job(oconn, title="Welder")
    server.latency = 5.0
    w = workers(dsn, server)
    wait_for(lambda: leased(oconn) > 0, what="a batch in flight")
    w.signal(signal.SIGTERM)
    time.sleep(0.2)
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=3) == 128 + signal.SIGTERM


def test_model_mismatch_is_a_clear_startup_error(conn, dsn, server):
    # conn: the database embeds with the local multilingual-e5-small (384-d)
    job(conn, title="Welder")
    proc = run_worker(dsn, server, "--once")
    assert proc.returncode == 2
    (error,) = [e for e in events(proc.stderr) if e["level"] == "error"]
    assert "multilingual-e5-small" in error["msg"] and "text-embedding-3-small@256" in error["msg"]
    assert "--switch-model" in error["msg"] and "--embedder local" in error["msg"]
    assert server.requests == [] and pending(conn) == 1


def test_no_active_model_says_run_migrate(oconn, dsn, server):
    oconn.execute("UPDATE embedding_models SET is_active = false")
    proc = run_worker(dsn, server, "--once")
    assert proc.returncode == 2
    assert "jobmatch migrate" in proc.stderr


def test_missing_api_key_is_a_configuration_error(oconn, dsn, server):
    proc = run_worker(dsn, server, "--once", key="")
    assert proc.returncode == 2 and "OPENAI_API_KEY" in proc.stderr


@pytest.mark.slow
def test_refresh_reembeds_old_and_stale_vectors(oconn, dsn, server):
    seed(oconn, jobs=3, users=1)
    assert run_worker(dsn, server, "--once").returncode == 0
    old_job, stale_user = 1, 1
    oconn.execute("UPDATE canonical_jobs SET job_embedding_updated_at = now() - interval '40 days'"
                  " WHERE id = %s", [old_job])
    oconn.execute("UPDATE user_preferences SET embedding_version = 0 WHERE user_id = %s",
                  [stale_user])
    server.reset()
    proc = run_worker(dsn, server, "--once", "--refresh-after-days", "30")
    assert proc.returncode == 0, proc.stderr
    texts = stored(oconn)
    # the old vector is made anew; the other version's text is unchanged, so
    # its vector is reused (no API call) and stamped with the new version
    assert server.inputs == [texts[("job", old_job)][0], "Data Scientist 0"]  # and its role text
    assert_embedded(oconn)
    assert oconn.execute("SELECT bool_and(u.embedding_version = s.profile_text_version)"
                         " FROM user_preferences AS u, jobmatch_settings AS s").fetchone()[0]


@pytest.mark.slow
def test_daily_token_budget_pauses_embedding(oconn, dsn, server):
    seed(oconn, jobs=2, users=0)
    oconn.execute("SELECT record_embedding_usage(%s, 1, 1, 1000)", [MODEL])
    proc = run_worker(dsn, server, "--once", "--daily-token-budget", "1000")
    assert proc.returncode == 0, proc.stderr
    assert server.requests == [] and pending(oconn) == 2
    assert messages(proc.stderr).count("daily token budget reached, embedding paused") == 1
    proc = run_worker(dsn, server, "--once", "--daily-token-budget", "100000")
    assert proc.returncode == 0 and pending(oconn) == 0
    assert_embedded(oconn)


@pytest.mark.slow
def test_daily_budget_in_dollars_pauses_embedding(oconn, dsn, server):
    # text-embedding-3-small costs $0.02 per 1M tokens: 2M tokens are $0.04
    seed(oconn, jobs=2, users=0)
    oconn.execute("SELECT record_embedding_usage(%s, 1, 1, 2000000)", [MODEL])
    assert oconn.execute("SELECT usd FROM embedding_spend").fetchone()[0] == Decimal("0.04")
    proc = run_worker(dsn, server, "--once", "--daily-budget-usd", "0.04")
    assert proc.returncode == 0, proc.stderr
    assert server.requests == [] and pending(oconn) == 2
    (paused,) = [e for e in events(proc.stderr) if e["msg"].startswith("daily token budget")]
    assert paused["usd_today"] == 0.04 and paused["budget_usd"] == 0.04
    proc = run_worker(dsn, server, "--once", "--daily-budget-usd", "0.05")
    assert proc.returncode == 0 and pending(oconn) == 0


def test_progress_lines_while_draining(oconn, dsn, server):
    for i in range(20):
        job(oconn, title=f"Plumber {i}")
    proc = run_worker(dsn, server, "--once", "--batch-size", "5", "--progress-interval", "0")
    assert proc.returncode == 0, proc.stderr
    progress = [e for e in events(proc.stderr) if e["msg"] == "progress"]
    assert [p["rows_done"] for p in progress] == [5, 10, 15, 20]
    # rows_done counts embedded rows; the last batch's write-back may still be
    # in flight (it overlaps the next batch), so its rows may still be queued
    assert all(15 - i * 5 <= p["queue_left"] <= 20 - i * 5 for i, p in enumerate(progress))
    assert all(p["rows_per_s"] >= 0 for p in progress)
    (drained,) = [e for e in events(proc.stderr) if e["msg"] == "drained"]
    assert (drained["written"], drained["queue_left"]) == (20, 0)
    assert KEY not in proc.stderr


def test_worker_in_a_thread_wakes_on_notify_and_stops_promptly(oconn, dsn, server):
    """The Worker class itself: NOTIFY and stop() wake its wait at once."""
    from jobmatch.openai_embedder import OpenAIEmbedder

    stop = StopSignal()
    emb = OpenAIEmbedder(model="text-embedding-3-small", dimensions=256, api_key=KEY,
                         base_url=server.base_url, sleep=stop.sleep)
    w = Worker(dsn, emb, Settings(poll_interval=60, refresh_interval=0), stop, "thread-worker")
    codes = []
    t = threading.Thread(target=lambda: codes.append(w.run()))
    t.start()
    try:
        # once its first (empty) claim is done it is waiting: only a NOTIFY can wake it
        wait_for(lambda: oconn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'jobmatch-worker thread-worker'"
            " AND state = 'idle' AND query = 'COMMIT'").fetchone(),
            what="the worker to go idle")
        job(oconn, title="Baker")
        wait_for(lambda: pending(oconn) == 0, timeout=10, what="the NOTIFY-driven drain")
        assert_embedded(oconn)
    finally:
        stop.set()
        t.join(timeout=5)
        emb.close()
    assert not t.is_alive() and codes == [0]
    assert_no_bad_vectors(oconn)


def test_identical_texts_are_sent_once(oconn, dsn, server):
    for user_id in (1, 2, 3):  # seekers who said the same thing
        user(oconn, user_id, job_roles=["Cook"])
    job(oconn, title="Welder")
    job(oconn, title="Welder")  # a repost
    proc = run_worker(dsn, server, "--once")
    assert proc.returncode == 0, proc.stderr
    assert_embedded(oconn)
    assert sorted(server.input_counts().values()) == [1, 1, 1, 1]  # profile and role texts
    assert oconn.execute("SELECT inputs FROM embedding_usage").fetchone()[0] == 4


@pytest.mark.slow
def test_local_embedder(conn, dsn, server):
    """--embedder local (the template database's model): no provider at all."""
    job(conn, title="Welder", ai_required_skills=["TIG"])
    user(conn, 1, job_roles=["Welder"], technical_skills=["TIG"])
    proc = run_worker(dsn, server, "--once", "--embedder", "local", "--model",
                      "multilingual-e5-small", "--dimensions", "384")
    assert proc.returncode == 0, proc.stderr
    assert pending(conn) == 0 and server.requests == []
    assert conn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding_model ="
                        " 'multilingual-e5-small' AND vector_dims(job_embedding) = 384"
                        ).fetchone()[0] == 1
    assert conn.execute("SELECT match_method FROM match_jobs(1, 5)").fetchone()[0] == "semantic"
