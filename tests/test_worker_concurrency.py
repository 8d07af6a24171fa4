"""`jobmatch worker` racing the application and other workers: edits and
deletes during a batch, a killed worker, two workers on one queue."""

import concurrent.futures
import signal

import pytest

from support.data import job
from support.common import wait_for
from support.worker import assert_embedded, events, leased, pending, run_worker, stored

pytestmark = pytest.mark.slow  # several worker processes and lease expiries per test


def test_row_updated_or_deleted_while_its_batch_is_in_flight(oconn, dsn, server, workers):
    edited, deleted, kept = (job(oconn, title=t) for t in ("Cook", "Baker", "Butcher"))
    server.latency = 1.0
    w = workers(dsn, server)
    wait_for(lambda: leased(oconn) == 3, what="the batch in flight")
    oconn.execute("UPDATE canonical_jobs SET title = 'Head Chef' WHERE id = %s", [edited])
    oconn.execute("DELETE FROM canonical_jobs WHERE id = %s", [deleted])
    wait_for(lambda: pending(oconn) == 0, what="the new text's vector")
    assert w.stop() == 0, w.stderr
    rows = stored(oconn)
    assert rows[("job", edited)][1].startswith("Job title: Head Chef")  # the NEW text
    assert_embedded(oconn)  # edited and kept: vectors of their current texts
    assert ("job", deleted) not in rows
    assert oconn.execute("SELECT count(*) FROM embedding_queue WHERE entity_id = %s",
                         [deleted]).fetchone()[0] == 0
    assert set(rows) == {("job", edited), ("job", kept)}


def test_killed_worker_rows_are_reclaimed_after_the_lease(oconn, dsn, server, workers):
    for i in range(4):
        job(oconn, title=f"Welder {i}")
    server.latency = 2.0
    first = workers(dsn, server, "--lease-seconds", "3")
    wait_for(lambda: leased(oconn) == 4, what="the batch in flight")
    first.signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    assert leased(oconn) == 4  # nobody released them: the lease must run out
    server.latency = 0.0
    second = workers(dsn, server, "--poll-interval", "0.5")
    wait_for(lambda: pending(oconn) == 0, timeout=15, what="the second worker")
    assert second.stop() == 0, second.stderr
    assert_embedded(oconn)


def test_two_workers_share_the_queue_without_duplicates(oconn, dsn, server, workers):
    for i in range(60):
        job(oconn, title=f"Electrician {i}", ai_required_skills=[f"circuit{i}"])
    server.latency = 0.1
    flags = ("--batch-size", "3", "--request-size", "3", "--poll-interval", "0.5")
    a, b = workers(dsn, server, *flags), workers(dsn, server, *flags)
    wait_for(lambda: pending(oconn) == 0, timeout=30, what="the queue to drain")
    assert a.stop() == 0 and b.stop() == 0
    assert_embedded(oconn)
    counts = server.input_counts()
    # no text embedded twice: each job's profile and role texts once
    assert len(counts) == 120 and set(counts.values()) == {1}
    done = [e for w in (a, b) for e in events(w.stderr)
            if e["msg"] == "worker stopped"]
    assert all(d["written"] > 0 for d in done) and sum(d["written"] for d in done) == 60


def test_once_workers_in_parallel(oconn, dsn, server):
    """Cron-style: two --once runs at the same time split the work."""
    for i in range(30):
        job(oconn, title=f"Carpenter {i}")
    server.latency = 0.1
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda _: run_worker(dsn, server, "--once", "--batch-size", "3"),
                              range(2)))
    assert [p.returncode for p in procs] == [0, 0]
    assert pending(oconn) == 0
    assert_embedded(oconn)
    assert set(server.input_counts().values()) == {1}
