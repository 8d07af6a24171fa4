"""`jobmatch backfill --batch-api`: low-priority rows go through OpenAI's Batch
API (the local fake server's /v1/files and /v1/batches), are written back
with the worker's hash check, resume after a restart from the batch ids the
database holds, and are billed at the Batch price; fresh edits stay with the
worker."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from support.fake_openai import fake_embedding
from support.data import job, queue_rows
from support.worker import KEY, ROOT, run_worker, stored, stored_roles

DIMS = 256


def backfill(dsn, server, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": dsn, "OPENAI_API_KEY": KEY,
           "OPENAI_BASE_URL": server.base_url}
    proc = subprocess.run([sys.executable, "-m", "jobmatch.cli", "backfill", "--batch-api",
                           "--model", "text-embedding-3-small", "--dimensions", str(DIMS),
                           "--poll-interval", "0.05", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert KEY not in proc.stdout + proc.stderr
    return proc


def low_priority_rows(conn, n_jobs=5) -> list[int]:
    ids = [job(conn, title=f"Welder {i}", ai_required_skills=[f"skill{i}"]) for i in range(n_jobs)]
    conn.execute("UPDATE embedding_queue SET priority = 1")  # a backfill, not fresh edits
    return ids


def assert_vectors_are_the_providers(conn, ids) -> None:
    for i, text, role in conn.execute("SELECT id, job_embedding_text,"
                                      " jobmatch_role_text(job_embedding_text)"
                                      " FROM canonical_jobs WHERE id = ANY(%s)", [ids]):
        v, r = conn.execute("SELECT job_embedding, job_role_embedding FROM canonical_jobs"
                            " WHERE id = %s", [i]).fetchone()
        assert np.allclose(v.to_numpy(), fake_embedding(text, DIMS), atol=1e-6)
        assert np.allclose(r.to_numpy(), fake_embedding(role, DIMS), atol=1e-6)


def test_a_backfill_goes_through_batches_and_fresh_edits_stay_with_the_worker(oconn, dsn,
                                                                             server):
    ids = low_priority_rows(oconn)
    fresh = job(oconn, title="Baker")  # priority 0: the worker's
    proc = backfill(dsn, server, "--wait", "--max-requests", "2")
    assert proc.returncode == 0, proc.stderr
    assert "batches submitted: 3, applied: 3 (5 vectors written, 0 rows failed)" in proc.stdout
    assert server.inputs == []  # nothing through the synchronous endpoint
    texts, roles = stored(oconn), stored_roles(oconn)
    # each request carries the row's two texts: profile and role
    assert sorted(server.batch_inputs) == sorted([texts[("job", i)][0] for i in ids]
                                                 + [roles[("job", i)][0] for i in ids])
    assert queue_rows(oconn) == [("job", fresh)]
    assert_vectors_are_the_providers(oconn, ids)
    # billed at the Batch price (half of $0.02 per 1M tokens)
    inputs, tokens, batch_inputs, batch_tokens, usd = oconn.execute(
        "SELECT inputs, tokens, batch_inputs, batch_tokens, usd FROM embedding_spend").fetchone()
    assert (inputs, tokens, batch_inputs) == (0, 0, 10) and batch_tokens > 0
    assert float(usd) == pytest.approx(batch_tokens * 0.01 / 1e6)
    assert oconn.execute("SELECT count(*), bool_and(status = 'applied')"
                         " FROM embedding_api_batches").fetchone() == (3, True)


@pytest.mark.slow
def test_a_restarted_backfill_resumes_from_the_batches_the_database_holds(oconn, dsn, server):
    ids = low_priority_rows(oconn, 3)
    server.batch_polls = 10_000  # the provider takes its time
    first = backfill(dsn, server)  # one round: submit, exit (cron)
    assert first.returncode == 0, first.stderr
    assert "batches submitted: 1, applied: 0" in first.stdout and "still open: 1" in first.stdout
    # the rows are leased to the batch: a worker leaves them alone
    assert run_worker(dsn, server, "--once").returncode == 0
    assert server.inputs == []
    server.batch_polls = 0  # done now
    second = backfill(dsn, server)
    assert second.returncode == 0, second.stderr
    assert "batches submitted: 0, applied: 1 (3 vectors written" in second.stdout
    assert len(server.batches) == 1 and queue_rows(oconn) == []
    assert_vectors_are_the_providers(oconn, ids)


@pytest.mark.slow
def test_a_text_changed_while_its_batch_ran_is_not_written(oconn, dsn, server):
    ids = low_priority_rows(oconn, 2)
    server.batch_polls = 10_000
    assert backfill(dsn, server).returncode == 0
    oconn.execute("UPDATE canonical_jobs SET title = 'Head Welder' WHERE id = %s", [ids[0]])
    server.batch_polls = 0
    proc = backfill(dsn, server)
    assert "(1 vectors written" in proc.stdout
    # the new text is the worker's to embed, at once
    assert queue_rows(oconn) == [("job", ids[0])]
    assert oconn.execute("SELECT job_embedding IS NULL FROM canonical_jobs WHERE id = %s",
                         [ids[0]]).fetchone() == (True,)


def test_a_request_the_batch_failed_charges_only_its_row(oconn, dsn, server):
    ids = low_priority_rows(oconn, 3)
    oconn.execute("UPDATE canonical_jobs SET title = 'POISON welder' WHERE id = %s", [ids[1]])
    oconn.execute("UPDATE embedding_queue SET priority = 1")
    server.batch_fail_inputs_containing = "POISON"
    proc = backfill(dsn, server, "--wait")
    assert "(2 vectors written, 1 rows failed)" in proc.stdout, proc.stdout + proc.stderr
    assert oconn.execute("SELECT entity_id, attempts, last_error LIKE '%%POISON%%'"
                         " FROM embedding_queue").fetchall() == [(ids[1], 1, True)]


@pytest.mark.slow
def test_backfill_refuses_a_model_the_database_does_not_embed_with(oconn, dsn, server):
    env_model = backfill(dsn, server)  # 256-d: the database's model
    assert env_model.returncode == 0
    other = subprocess.run([sys.executable, "-m", "jobmatch.cli", "backfill", "--batch-api",
                            "--model", "text-embedding-3-large"],
                           env={**os.environ, "DATABASE_URL": dsn, "OPENAI_API_KEY": KEY,
                                "OPENAI_BASE_URL": server.base_url},
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert other.returncode == 2 and "not text-embedding-3-large" in other.stderr


def test_a_model_switchs_target_fills_through_batches(oconn, dsn, server):
    # a switch re-embeds every row: at the Batch price when it need not be
    # fast. The target's vectors go to its side table (never the serving
    # columns), made by the target's model, billed to it; the switch then
    # promotes as after a worker's backfill.
    target = "text-embedding-3-large@256"
    ids = low_priority_rows(oconn, 3)
    assert run_worker(dsn, server, "--once").returncode == 0
    serving = stored(oconn)
    (queued,) = oconn.execute("SELECT add_embedding_model(%s, 'openai', %s, NULL)",
                              [target, DIMS]).fetchone()
    assert queued == 3
    proc = backfill(dsn, server, "--target", "--wait")
    assert proc.returncode == 0, proc.stderr
    assert "batches submitted: 1, applied: 1 (3 vectors written, 0 rows failed)" in proc.stdout
    assert set(server.batch_models) == {("text-embedding-3-large", DIMS)}
    got = dict(oconn.execute("SELECT entity_id, embedding FROM embedding_vectors"
                             " WHERE model = %s", [target]).fetchall())
    assert sorted(got) == sorted(ids)
    for i in ids:
        assert np.allclose(got[i].to_numpy(), fake_embedding(serving[("job", i)][0], DIMS),
                           atol=1e-6)
    now = stored(oconn)  # the serving vectors untouched
    assert now.keys() == serving.keys()
    for key, (text, *_, vec) in serving.items():
        assert now[key][0] == text and np.array_equal(now[key][-1], vec)
    assert oconn.execute("SELECT batch_inputs FROM embedding_spend WHERE model = %s",
                         [target]).fetchone() == (6,)
    assert oconn.execute("SELECT promote_embedding_model(%s)", [target]).fetchone() == (3,)
    # no switch under way: --target says so
    oconn.execute("SELECT drop_embedding_model(%s)",
                  [oconn.execute("SELECT model FROM embedding_models WHERE is_target"
                                 ).fetchone()[0]])
    proc = backfill(dsn, server, "--target")
    assert proc.returncode == 2 and "no model switch is under way" in proc.stderr
