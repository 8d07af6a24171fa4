"""A row the database refuses to write (an application's own trigger on
canonical_jobs, a CHECK constraint) must not fail the rows written back with
it: the worker bisects the write-back with the vectors it already paid for,
so the good rows are written once and only the refused row is charged."""

import numpy as np
import pytest

from support.data import DIMS, MODEL as LOCAL_MODEL, job, unit
from jobmatch import queue
from jobmatch.db import connect
from jobmatch.batch import DrainStats, process_batch
from jobmatch.embedders import Embedded
from support.worker import (assert_embedded, assert_no_bad_vectors, events, fast_retries, pending,
                            run_worker)

REFUSALS = {
    # an application's trigger raising for one row (SQLSTATE P0001)
    "trigger": """
        CREATE FUNCTION app_refuses_job() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.id = {bad} THEN
                RAISE EXCEPTION 'app rule: job % is frozen', NEW.id;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER app_refuses_job BEFORE UPDATE ON canonical_jobs
        FOR EACH ROW EXECUTE FUNCTION app_refuses_job()""",
    # a CHECK constraint the row breaks once it has a vector (SQLSTATE 23514)
    "check": """
        ALTER TABLE canonical_jobs ADD CONSTRAINT app_no_vector_for_job
        CHECK (job_embedding IS NULL OR id <> {bad}) NOT VALID""",
}
ERROR_TEXT = {"trigger": "app rule: job {bad} is frozen", "check": "app_no_vector_for_job"}


def dead_letters(conn) -> list[tuple]:
    return conn.execute("SELECT entity_id, attempts, last_error FROM embedding_dead_letter"
                        " ORDER BY entity_id").fetchall()


@pytest.mark.slow
@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_one_row_the_database_refuses_does_not_fail_its_batch(oconn, dsn, server, refusal):
    ids = [job(oconn, title=f"Welder {i}", ai_required_skills=["TIG", f"skill{i}"])
           for i in range(30)]
    bad = ids[17]
    oconn.execute(REFUSALS[refusal].format(bad=bad))
    fast_retries(oconn, max_attempts=3)
    error_text = ERROR_TEXT[refusal].format(bad=bad)

    proc = run_worker(dsn, server, "--once")  # one batch of 30
    assert proc.returncode == 0, proc.stderr
    good = [("job", i) for i in ids if i != bad]
    assert_embedded(oconn, good)  # 29 written, each once
    assert len(server.inputs) == 60  # two texts a row; the bisection sent nothing again
    ((entity_id, attempts, error, locked),) = oconn.execute(
        "SELECT entity_id, attempts, last_error, locked_by FROM embedding_queue").fetchall()
    assert (entity_id, attempts, locked) == (bad, 1, None)
    assert error.startswith("database: ") and error_text in error
    assert dead_letters(oconn) == []
    refusals = [e for e in events(proc.stderr) if e["msg"] == "write-back refused"]
    assert [e["entity_id"] for e in refusals] == [bad]
    (stopped,) = [e for e in events(proc.stderr) if e["msg"] == "worker stopped"]
    assert (stopped["written"], stopped["failed"]) == (29, 1)

    for _ in range(2):  # the cap is 3: two more tries, each embedding only the bad row
        assert run_worker(dsn, server, "--once").returncode == 0
    assert len(server.inputs) == 64
    assert pending(oconn) == 0
    ((dead_id, attempts, error),) = dead_letters(oconn)
    assert (dead_id, attempts) == (bad, 3) and error_text in error
    assert oconn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding IS NOT NULL"
                         ).fetchone()[0] == 29
    assert_no_bad_vectors(oconn)


class CountingEmbedder:
    model, provider, dimensions = LOCAL_MODEL, "local", DIMS

    def __init__(self):
        self.inputs = 0

    def embed(self, items):
        self.inputs += len(items)
        return Embedded(np.stack([unit(len(i.text)) for i in items]), tokens=1, requests=1)


def test_process_batch_bisects_a_refused_write_back(conn, dsn):
    """batch.process_batch (the demo's loop) does the same on one connection."""
    ids = [job(conn, title=f"Cook {i}") for i in range(9)]
    conn.execute(REFUSALS["trigger"].format(bad=ids[4]))
    with connect(dsn, autocommit=True) as c:
        batch = queue.claim(c, "w", 100)
        emb, stats = CountingEmbedder(), DrainStats()
        process_batch(c, emb, "w", batch, stats)
    assert emb.inputs == 18  # each row's profile and role texts, once
    assert (stats.written, stats.failed) == (8, 1)
    assert conn.execute("SELECT entity_id, attempts FROM embedding_queue").fetchall() == \
        [(ids[4], 1)]
    assert conn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding IS NOT NULL"
                        ).fetchone()[0] == 8
