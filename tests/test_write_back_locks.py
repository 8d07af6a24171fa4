"""The write-back (complete_embeddings) against application writers that
hold row locks: a deadlock must cost neither the application its UPDATE
nor the worker its vectors.

Found by a chaos run with an application thread updating 30 random jobs
per statement while the worker drained: complete_embeddings locks the rows
it writes in join order, the application's UPDATE in its own order, and
PostgreSQL broke the cycles by failing one side. Here the cycle is built
deterministically: the application holds job 2 and then asks for job 1,
while the worker's write-back holds job 1 and waits for job 2.
`deadlock_timeout` decides who notices the cycle, and so who is failed."""

import threading

import numpy as np
import psycopg
import pytest

from support.data import DIMS, MODEL, job, unit
from jobmatch import queue
from jobmatch.db import connect
from jobmatch.batch import DrainStats, process_batch
from jobmatch.embedders import Embedded
from support.common import wait_for


class CountingEmbedder:
    model, provider, dimensions = MODEL, "local", DIMS

    def __init__(self):
        self.calls = 0

    def embed(self, items):
        self.calls += 1
        return Embedded(np.stack([unit(len(i.text)) for i in items]), tokens=1, requests=1)


def waiting_on_a_lock(conn, pid: int) -> bool:
    return conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                        [pid]).fetchone()[0] or False


def deadlock(conn, dsn, victim: str):
    """The worker writes jobs 1 and 2 back while an application transaction
    holds job 2 and then updates job 1. Returns (worker outcome, application
    outcome, embedder, stats, batch)."""
    ids = [job(conn, title=f"Welder {i}") for i in range(2)]
    worker_conn = connect(dsn, autocommit=True)
    app = psycopg.connect(dsn, autocommit=True)
    # Only the side whose deadlock_timeout runs out first looks for the
    # cycle, and it is the one failed. The app closes the cycle when it asks
    # for job 1, so the worker's timer must outlast that moment.
    timeouts = {"worker": ("2s", "30s"), "app": ("30s", "200ms")}[victim]
    worker_conn.execute(f"SET deadlock_timeout = '{timeouts[0]}'")
    app.execute(f"SET deadlock_timeout = '{timeouts[1]}'")
    batch = queue.claim(worker_conn, "w", 10)
    assert [c.entity_id for c in batch] == ids
    emb, stats, outcome = CountingEmbedder(), DrainStats(), {}

    def write_back():
        try:
            process_batch(worker_conn, emb, "w", batch, stats)
            outcome["worker"] = "ok"
        except psycopg.Error as exc:
            outcome["worker"] = type(exc).__name__

    app.execute("BEGIN")
    app.execute("UPDATE canonical_jobs SET posted_date = posted_date WHERE id = %s", [ids[1]])
    t = threading.Thread(target=write_back)
    t.start()
    try:
        wait_for(lambda: waiting_on_a_lock(conn, worker_conn.info.backend_pid) or "worker" in outcome,
                 what="the write-back to wait for job 2")
        try:  # job 1: the worker holds it, if it locks in id order (or skips job 2 instead)
            app.execute("UPDATE canonical_jobs SET posted_date = posted_date WHERE id = %s",
                        [ids[0]])
            app.execute("COMMIT")
            outcome["app"] = "ok"
        except psycopg.Error as exc:
            outcome["app"] = type(exc).__name__
            app.execute("ROLLBACK")
        t.join(30)
    finally:
        app.close()
        worker_conn.close()
    return outcome, emb, stats, ids


def settled(conn, ids) -> None:
    """Every row either has its vector, or is back in the queue, unleased,
    with no attempt charged: nothing lost, nothing stuck."""
    for i in ids:
        vec = conn.execute("SELECT job_embedding FROM canonical_jobs WHERE id = %s", [i]).fetchone()[0]
        q = conn.execute("SELECT attempts, locked_by FROM embedding_queue WHERE entity_id = %s",
                         [i]).fetchone()
        assert (vec is not None and q is None) or (vec is None and q == (0, None)), (i, vec, q)


def test_worker_that_loses_a_deadlock_keeps_its_vectors(conn, dsn):
    """The worker is the victim: it retries the write with the vectors it
    has, instead of dropping its connection and paying for the batch again."""
    outcome, emb, stats, ids = deadlock(conn, dsn, victim="worker")
    assert outcome == {"worker": "ok", "app": "ok"}
    assert emb.calls == 1
    settled(conn, ids)
    assert stats.written + conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0] == 2


def test_application_never_loses_a_deadlock_to_the_worker(conn, dsn):
    outcome, emb, stats, ids = deadlock(conn, dsn, victim="app")
    assert outcome["app"] == "ok"
    assert outcome["worker"] == "ok"
    settled(conn, ids)
