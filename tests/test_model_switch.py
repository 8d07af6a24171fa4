"""A model switch without downtime (blue/green, issue #15): a target model is
filled beside the active one (`jobmatch model add`), promoted in one
transaction once it covers enough (`model promote`), rolled back by
promoting the old one, and its predecessor dropped (`model drop`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import psycopg
import pytest

from jobmatch import queue
from jobmatch.batch import drain, drain_target
from support.common import wait_for
from support.data import MODEL, job, user
from support.fake_openai import fake_embedding
from support.worker import DIMS as ODIMS, MODEL as OMODEL, ROOT, pending, run_worker

TARGET = "text-embedding-3-small@384"  # 384 dimensions, like the active local model


def old_vec(text: str) -> np.ndarray:
    return fake_embedding(text, 384)


def new_vec(text: str) -> np.ndarray:
    # another space: every text shares a word, so every cosine differs from old_vec's
    return fake_embedding(text + " zebra", 384)


class Fake:
    """An embedder through the real batch code (embed_batch, both texts of a row)."""

    provider = "openai"

    def __init__(self, model, fn, dims=384):
        self.model, self.fn, self.dimensions = model, fn, dims

    def embed(self, items):
        from jobmatch.embedders import Embedded

        return Embedded(np.stack([self.fn(i.text) for i in items]).astype(np.float32),
                        requests=1, tokens=sum(len(i.text) // 4 for i in items))


def cos(a, b) -> float:
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture
def world(conn):
    """Six seekers and twelve jobs embedded by the active model; thresholds
    and floors off so the answers are the vectors' alone."""
    conn.execute("UPDATE embedding_models SET similarity_threshold = -1,"
                 " relevance_margin = NULL WHERE model = %s", [MODEL])
    roles = ["Welder", "Cook", "Nurse", "Data Scientist", "Driver", "Teacher"]
    for i, role in enumerate(roles):
        user(conn, i + 1, job_roles=[role], technical_skills=[f"skill{i}"])
        job(conn, title=role, ai_required_skills=[f"skill{i}"], posted_date="now()")
        job(conn, title=f"Senior {role} Lead", posted_date="now()")
    drain(conn, Fake(MODEL, old_vec), "w0")
    assert pending(conn) == 0
    return conn


def answers(conn, user_id):
    return conn.execute("SELECT job_id, match_method, similarity FROM match_jobs(%s, 5)",
                        [user_id]).fetchall()


def vectors(conn, kind, entity_id, fn):
    text = conn.execute(
        "SELECT jobmatch_job_profile_text(j) FROM canonical_jobs j WHERE id = %s"
        if kind == "job" else
        "SELECT jobmatch_user_profile_text(u) FROM user_preferences u WHERE user_id = %s",
        [entity_id]).fetchone()[0]
    return fn(text)


def add_target(conn) -> int:
    return conn.execute("SELECT add_embedding_model(%s, 'openai', 384, -1)",
                        [TARGET]).fetchone()[0]


def coverage(conn, model) -> float:
    return float(conn.execute("SELECT coverage_pct FROM embedding_model_coverage"
                              " WHERE model = %s", [model]).fetchone()[0])


def test_add_registers_a_target_and_queues_every_row_while_the_active_model_serves(world):
    before = {u: answers(world, u) for u in range(1, 7)}
    assert add_target(world) == 18  # 12 jobs + 6 seekers, at low priority
    assert world.execute("SELECT model FROM embedding_models WHERE is_active").fetchone() == (MODEL,)
    assert world.execute("SELECT model FROM embedding_models WHERE is_target").fetchone() == (TARGET,)
    assert world.execute("SELECT DISTINCT priority FROM embedding_target_queue").fetchall() == [(1,)]
    assert {u: answers(world, u) for u in range(1, 7)} == before
    assert coverage(world, MODEL) == 100 and coverage(world, TARGET) == 0
    # a second target, or the active model as a target, is refused
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        world.execute("SELECT add_embedding_model('text-embedding-3-large@384', 'openai', 384)")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        world.execute("SELECT add_embedding_model(%s, 'local', 384)", [MODEL])


def test_during_a_switch_every_covered_seeker_keeps_semantic_answers_of_the_old_model(world):
    before = {u: answers(world, u) for u in range(1, 7)}
    jobs_before = world.execute("SELECT * FROM match_users(1, 10)").fetchall()
    add_target(world)
    # every job and half the seekers filled for the target, in its own storage
    rows = queue.claim_target(world, "t", 15)
    assert queue.complete_target(world, "t", TARGET, rows, [new_vec(r.text) for r in rows]) == 15
    assert 0 < coverage(world, TARGET) < 100
    for u in range(1, 7):
        got = answers(world, u)
        assert got == before[u] and {m for _, m, _ in got} == {"semantic"}
        # the similarities are the old model's cosines
        seeker = vectors(world, "user", u, old_vec)
        for job_id, _, sim in got:
            assert sim == pytest.approx(cos(seeker, vectors(world, "job", job_id, old_vec)),
                                        abs=1e-5)
    assert world.execute("SELECT * FROM match_users(1, 10)").fetchall() == jobs_before
    # the serving columns never saw a target vector
    assert world.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding_model <> %s",
                         [MODEL]).fetchone() == (0,)


def test_after_promotion_only_new_model_vectors_are_compared(world):
    add_target(world)
    assert drain_target(world, Fake(TARGET, new_vec), "t").written == 18
    assert coverage(world, TARGET) == 100
    assert world.execute("SELECT promote_embedding_model(%s)", [TARGET]).fetchone() == (18,)
    assert world.execute("SELECT model FROM embedding_models WHERE is_active").fetchone() == (TARGET,)
    for u in range(1, 7):
        got = answers(world, u)
        assert got and {m for _, m, _ in got} == {"semantic"}
        seeker = vectors(world, "user", u, new_vec)
        for job_id, _, sim in got:
            assert sim == pytest.approx(cos(seeker, vectors(world, "job", job_id, new_vec)),
                                        abs=1e-5)
            assert abs(sim - cos(vectors(world, "user", u, old_vec),
                                 vectors(world, "job", job_id, old_vec))) > 1e-3
    # match_users too: its scores are the new model's pairs
    (sim,) = world.execute("SELECT similarity FROM match_users(1, 10) WHERE user_id = 1"
                           ).fetchone()
    assert sim == pytest.approx(cos(vectors(world, "user", 1, new_vec),
                                    vectors(world, "job", 1, new_vec)), abs=1e-5)
    # the old vectors wait beside, for a rollback; the old model is the target
    assert world.execute("SELECT model, count(*) FROM embedding_vectors GROUP BY 1"
                         ).fetchall() == [(MODEL, 18)]
    assert world.execute("SELECT model FROM embedding_models WHERE is_target").fetchone() == (MODEL,)
    assert pending(world) == 0  # every row served by the new model: nothing to re-embed


def test_rollback_promotes_the_old_model_back_with_its_answers(world):
    before = {u: answers(world, u) for u in range(1, 7)}
    add_target(world)
    drain_target(world, Fake(TARGET, new_vec), "t")
    world.execute("SELECT promote_embedding_model(%s)", [TARGET])
    assert world.execute("SELECT promote_embedding_model(%s)", [MODEL]).fetchone() == (18,)
    assert {u: answers(world, u) for u in range(1, 7)} == before


def test_promote_below_the_coverage_floor_refuses_with_the_figure(world, dsn):
    before = {u: answers(world, u) for u in range(1, 7)}
    add_target(world)
    rows = queue.claim_target(world, "t", 17)
    queue.complete_target(world, "t", TARGET, rows, [new_vec(r.text) for r in rows])
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                       match=r"covers 83\.33% \(jobs 12 of 12, seekers 5 of 6\), below the floor of 99%"):
        world.execute("SELECT promote_embedding_model(%s)", [TARGET])
    assert world.execute("SELECT model FROM embedding_models WHERE is_active").fetchone() == (MODEL,)
    assert {u: answers(world, u) for u in range(1, 7)} == before
    # the command says the same, exit 2; a lower floor promotes, and the
    # seeker without a new vector waits for the worker (keyword meanwhile)
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "jobmatch.cli", "model", "promote", TARGET],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "covers 83.33%" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "jobmatch.cli", "model", "promote", TARGET,
                           "--min-coverage", "80"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    (missing,) = [u for u in range(1, 7) if not world.execute(
        "SELECT 1 FROM user_preferences WHERE user_id = %s AND embedding_model = %s",
        [u, TARGET]).fetchone()]
    assert {m for _, m, _ in answers(world, missing)} == {"keyword"}
    assert world.execute("SELECT entity_type, entity_id FROM embedding_queue").fetchall() == [
        ("user", missing)]


def test_drop_before_promotion_refuses_and_after_it_removes_the_old_vectors(world):
    add_target(world)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="active model"):
        world.execute("SELECT drop_embedding_model(%s)", [MODEL])
    drain_target(world, Fake(TARGET, new_vec), "t")
    world.execute("SELECT promote_embedding_model(%s)", [TARGET])
    assert world.execute("SELECT drop_embedding_model(%s)", [MODEL]).fetchone() == (18,)
    assert world.execute("SELECT count(*) FROM embedding_vectors").fetchone() == (0,)
    assert world.execute("SELECT count(*) FROM embedding_models WHERE is_target").fetchone() == (0,)
    # no rollback once its vectors are gone
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="covers 0"):
        world.execute("SELECT promote_embedding_model(%s)", [MODEL])


def test_a_fresh_edit_needs_both_models_and_goes_before_the_backfill(world):
    add_target(world)
    drain_target(world, Fake(TARGET, new_vec), "t")
    world.execute("UPDATE canonical_jobs SET title = 'Pastry Cook' WHERE id = 3")
    # the active model's queue, as always, and the target's, at priority 0;
    # its side vector was of the old text
    assert world.execute("SELECT priority FROM embedding_queue WHERE entity_id = 3"
                         ).fetchall() == [(0,)]
    assert world.execute("SELECT priority FROM embedding_target_queue").fetchall() == [(0,)]
    assert world.execute("SELECT count(*) FROM embedding_vectors WHERE entity_type = 'job'"
                         " AND entity_id = 3").fetchone() == (0,)
    world.execute("SELECT add_embedding_model(%s, 'openai', 384)", [TARGET])  # backfill again
    (first,) = queue.claim_target(world, "t", 1)
    assert (first.entity_type, first.entity_id) == ("job", 3)


def test_the_target_write_back_refuses_a_changed_text_and_its_cache_pays_once(world):
    add_target(world)
    rows = {(r.entity_type, r.entity_id): r for r in queue.claim_target(world, "t", 100)}
    world.execute("UPDATE user_preferences SET job_roles = ARRAY['Baker'] WHERE user_id = 2")
    vecs = [new_vec(r.text) for r in rows.values()]
    roles = [new_vec(r.role_text) if r.role_text else None for r in rows.values()]
    assert queue.complete_target(world, "t", TARGET, list(rows.values()), vecs, roles) == 17
    assert world.execute("SELECT count(*) FROM embedding_vectors WHERE entity_type = 'user'"
                         " AND entity_id = 2").fetchone() == (0,)
    # a duplicate posting of an embedded text costs no call
    job(world, title="Welder", ai_required_skills=["skill0"], posted_date="now()")
    claimed = queue.claim_target(world, "t", 100)
    assert [(r.entity_type, r.entity_id) for r in claimed] == [("user", 2)]
    assert world.execute("SELECT cached_inputs FROM embedding_usage WHERE model = %s",
                         [TARGET]).fetchone()[0] >= 1
    # vectors of another model are refused
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        queue.complete_target(world, "t", MODEL, claimed, [old_vec(claimed[0].text)])
    with pytest.raises(psycopg.errors.DataException):
        queue.complete_target(world, "t", TARGET, claimed, [np.zeros(384, np.float32)])


# -- the worker, through the OpenAI path (the fake server) --------------------------------------

OTARGET = "text-embedding-3-large@256"


def test_worker_fills_both_models_and_a_kill_mid_switch_loses_nothing(oconn, dsn, server, workers):
    for i in range(40):
        job(oconn, title=f"Electrician {i}", ai_required_skills=[f"circuit{i}"],
            posted_date="now()")
    for i in range(10):
        user(oconn, i + 1, job_roles=[f"Electrician {i}"])
    assert run_worker(dsn, server, "--once").returncode == 0
    proc = subprocess.run([sys.executable, "-m", "jobmatch.cli", "model", "add",
                           "text-embedding-3-large", "--dimensions", "256"],
                          env={**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "50 rows queued" in proc.stdout, proc.stderr
    server.latency = 0.3
    first = workers(dsn, server, "--batch-size", "4", "--request-size", "8",
                    "--lease-seconds", "2", "--refresh-interval", "0")
    wait_for(lambda: oconn.execute("SELECT count(*) FROM embedding_vectors").fetchone()[0] >= 8,
             timeout=30, what="some target vectors")
    # a fresh edit meanwhile: embedded for the active model first
    oconn.execute("UPDATE canonical_jobs SET title = 'Electrician 0 (night shift)'"
                  " WHERE title = 'Electrician 0'")
    first.signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    # killed mid-switch: some target vectors stored, the rest queued or leased
    assert oconn.execute("SELECT count(*) FROM embedding_target_queue").fetchone()[0] > 0
    server.latency = 0.0
    second = run_worker(dsn, server, "--once", "--lease-seconds", "2", "--refresh-interval", "0")
    if oconn.execute("SELECT count(*) FROM embedding_target_queue").fetchone()[0]:
        import time

        time.sleep(2.5)  # the killed worker's leases run out
        second = run_worker(dsn, server, "--once", "--refresh-interval", "0")
    assert second.returncode == 0, second.stderr
    assert pending(oconn) == 0
    assert oconn.execute("SELECT count(*) FROM embedding_target_queue").fetchone() == (0,)
    cov = {r[0]: float(r[1]) for r in oconn.execute(
        "SELECT model, coverage_pct FROM embedding_model_coverage")}
    assert cov == {OMODEL: 100.0, OTARGET: 100.0}
    # every side vector is its current text's (the edited job's too)
    for kind, text, vec, role_text, role in oconn.execute(
            "SELECT v.entity_type, CASE v.entity_type WHEN 'job' THEN jobmatch_job_profile_text(j)"
            " ELSE jobmatch_user_profile_text(u) END, v.embedding, CASE v.entity_type"
            " WHEN 'job' THEN jobmatch_job_role_text(j) ELSE jobmatch_user_role_text(u) END,"
            " v.role_embedding FROM embedding_vectors v"
            " LEFT JOIN canonical_jobs j ON v.entity_type = 'job' AND j.id = v.entity_id"
            " LEFT JOIN user_preferences u ON v.entity_type = 'user' AND u.user_id = v.entity_id"):
        np.testing.assert_allclose(vec.to_numpy(), fake_embedding(text, ODIMS), atol=1e-6)
        np.testing.assert_allclose(role.to_numpy(), fake_embedding(role_text, ODIMS), atol=1e-6)
    # counted per model in the ledger
    inputs = dict(oconn.execute("SELECT model, sum(inputs) FROM embedding_usage GROUP BY 1"))
    assert inputs[OTARGET] >= 100 and inputs[OMODEL] >= 100
    sent = [r["model"] for r in server.requests if r.get("model")]
    assert "text-embedding-3-large" in sent
    # promoted, the same worker configuration keeps working: the old model is the target now
    oconn.execute("SELECT promote_embedding_model(%s)", [OTARGET])
    oconn.execute("UPDATE user_preferences SET job_roles = ARRAY['Plumber'] WHERE user_id = 1")
    third = run_worker(dsn, server, "--once", "--refresh-interval", "0")
    assert third.returncode == 0, third.stderr
    assert oconn.execute("SELECT embedding_model FROM user_preferences WHERE user_id = 1"
                         ).fetchone() == (OTARGET,)
    assert oconn.execute("SELECT count(*) FROM embedding_vectors WHERE model = %s AND"
                         " entity_type = 'user' AND entity_id = 1", [OMODEL]).fetchone() == (1,)


# -- hostile callers: the target's definer paths (see test_hostile_callers.py) -------------------

from test_hostile_callers import (assert_nothing_gained, data, login,  # noqa: E402,F401
                                  plant_everything, roles)


def test_the_target_queue_api_ignores_a_planted_pg_temp(conn, roles, data):  # noqa: F811
    add_target(conn)
    with login(conn, roles["worker"]) as hostile:
        plant_everything(hostile, conn)
        rows = queue.claim_target(hostile, "w", 10)
        assert len(rows) == 4
        assert queue.complete_target(hostile, "w", TARGET, rows[:2],
                                     [new_vec(r.text) for r in rows[:2]]) == 2
        queue.fail_target(hostile, "w", rows[2:3], "boom")
        queue.release_target(hostile, "w")
        # a duplicate text's copy and a seeker with nothing to embed go through the claim
        conn.execute("INSERT INTO user_preferences (user_id) VALUES (3)")
        queue.claim_target(hostile, "w", 10)
        assert_nothing_gained(conn, hostile, roles["worker"])
    # an application's edits during a switch (the triggers' new paths)
    with login(conn, roles["writer"]) as hostile:
        plant_everything(hostile, conn)
        hostile.execute("UPDATE public.canonical_jobs SET title = 'Head Cook'"
                        " WHERE title = 'Cook'")
        hostile.execute("DELETE FROM public.user_preferences WHERE user_id = 2")
        hostile.execute("TRUNCATE public.user_preferences")
        assert_nothing_gained(conn, hostile, roles["writer"])
    assert conn.execute("SELECT entity_type, priority FROM embedding_target_queue"
                        " WHERE entity_type = 'job' AND priority = 0").fetchall() == [("job", 0)]
    # the owner's commands are not the worker's, nor the bot's
    with login(conn, roles["worker"]) as hostile:
        for call in ("SELECT promote_embedding_model('x')", "SELECT drop_embedding_model('x')",
                     "SELECT add_embedding_model('x', 'openai', 3)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                hostile.execute(call)


def test_the_targets_index_is_built_before_promotion_and_serves_the_first_query(world, conn):
    from support.data import index_scans
    from jobmatch.vector_index import rebuild

    conn.execute("SELECT jobmatch_build_vector_index('job', NULL, 0, 'hnsw')")  # the old model's
    add_target(world)
    drain_target(world, Fake(TARGET, new_vec), "t")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="ivfflat"):
        rebuild(conn, "job", method="ivfflat", model=TARGET)
    built = rebuild(conn, "job", model=TARGET)
    assert (built["index"], built["method"], built["rows"]) == (
        "canonical_jobs_job_embedding_ann_next", "hnsw", 12)
    # the old model's answers are untouched by it
    world.execute("UPDATE embedding_models SET exact_scan_max_rows = 0")  # walk the index
    world.execute("SELECT promote_embedding_model(%s)", [TARGET])
    (definition,) = conn.execute("SELECT pg_get_indexdef('canonical_jobs_job_embedding_ann'::regclass)"
                                 ).fetchone()
    assert TARGET in definition
    assert MODEL in conn.execute("SELECT pg_get_indexdef("
                                 "'canonical_jobs_job_embedding_ann_next'::regclass)").fetchone()[0]
    scans = index_scans(conn)
    assert {m for _, m, _ in answers(world, 1)} == {"semantic"}
    assert index_scans(conn) > scans  # the first query after the switch walked the new index
    # rollback swaps them back; dropping the old model drops its index
    world.execute("SELECT promote_embedding_model(%s)", [MODEL])
    assert MODEL in conn.execute("SELECT pg_get_indexdef('canonical_jobs_job_embedding_ann'"
                                 "::regclass)").fetchone()[0]
    world.execute("SELECT drop_embedding_model(%s)", [TARGET])
    assert conn.execute("SELECT to_regclass('canonical_jobs_job_embedding_ann_next')"
                        ).fetchone() == (None,)


def test_the_worker_embeds_the_active_queue_before_the_target(world, dsn):
    from jobmatch.worker import Settings, Worker

    add_target(world)
    world.execute("UPDATE canonical_jobs SET title = title || ' II' WHERE id IN (1, 2)")
    calls = []

    class Logged(Fake):
        def embed(self, items):
            calls.append(self.model)
            return super().embed(items)

    made = {TARGET: Logged(TARGET, new_vec)}
    w = Worker(dsn, Logged(MODEL, old_vec), Settings(once=True, refresh_interval=0, batch_size=4),
               worker_id="order", make_embedder=lambda model, provider, dims: made.get(model))
    assert w.run() == 0
    # the two fresh edits of the active model first, then the target's 18 rows in batches of 4
    assert calls[0] == MODEL and set(calls[1:]) == {TARGET} and len(calls) == 1 + 5
    assert pending(world) == 0 and coverage(world, TARGET) == 100
    # a worker that cannot make the target's embedder leaves its queue alone, and says so
    world.execute("UPDATE canonical_jobs SET title = 'Welder III' WHERE id = 1")
    w = Worker(dsn, Logged(MODEL, old_vec), Settings(once=True, refresh_interval=0),
               worker_id="alone", make_embedder=None)
    assert w.run() == 0
    assert pending(world) == 0
    assert world.execute("SELECT count(*) FROM embedding_target_queue").fetchone() == (1,)


def test_health_and_status_show_both_models_coverage(world, dsn):
    add_target(world)
    rows = queue.claim_target(world, "t", 15)
    queue.complete_target(world, "t", TARGET, rows, [new_vec(r.text) for r in rows])
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
    health = subprocess.run([sys.executable, "-m", "jobmatch.cli", "health"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert health.returncode == 0, health.stderr
    lines = [line for line in health.stdout.splitlines() if line.startswith("model switch:")]
    assert lines == [
        f"model switch: active   {MODEL}: 100.00% covered (jobs in window 12/12, seekers 6/6)",
        f"model switch: target   {TARGET}: 50.00% covered (jobs in window 12/12, seekers 3/6),"
        " 3 queued"]
    status = subprocess.run([sys.executable, "-m", "jobmatch.cli", "model", "status", "--json"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert '"state": "target"' in status.stdout


def test_a_running_worker_follows_a_promotion_and_a_rollback(oconn, dsn, server, workers):
    for i in range(6):
        job(oconn, title=f"Plumber {i}", posted_date="now()")
        user(oconn, i + 1, job_roles=[f"Plumber {i}"])
    w = workers(dsn, server, "--poll-interval", "0.2", "--refresh-interval", "0")
    wait_for(lambda: pending(oconn) == 0, what="the active model's fill")
    oconn.execute("SELECT add_embedding_model(%s, 'openai', 256)", [OTARGET])
    target_cov = ("SELECT coverage_pct FROM embedding_model_coverage WHERE model = %s")
    wait_for(lambda: oconn.execute(target_cov, [OTARGET]).fetchone()[0] == 100,
             what="the target's fill")
    oconn.execute("SELECT promote_embedding_model(%s)", [OTARGET])
    oconn.execute("UPDATE user_preferences SET job_roles = ARRAY['Roofer'] WHERE user_id = 1")
    # the same worker embeds the edit for the new active model and for the old one (rollback)
    wait_for(lambda: oconn.execute(
        "SELECT embedding_model = %s AND embedding_text LIKE '%%Roofer%%' FROM user_preferences"
        " WHERE user_id = 1", [OTARGET]).fetchone()[0], what="the new active model's vector")
    wait_for(lambda: oconn.execute(
        "SELECT count(*) FROM embedding_vectors WHERE model = %s AND entity_type = 'user'"
        " AND entity_id = 1", [OMODEL]).fetchone()[0] == 1, what="the old model's vector")
    oconn.execute("SELECT promote_embedding_model(%s)", [OMODEL])
    oconn.execute("UPDATE user_preferences SET job_roles = ARRAY['Tiler'] WHERE user_id = 2")
    wait_for(lambda: oconn.execute(
        "SELECT embedding_model = %s AND embedding_text LIKE '%%Tiler%%' FROM user_preferences"
        " WHERE user_id = 2", [OMODEL]).fetchone()[0], what="the rolled-back model's vector")
    assert w.stop() == 0, w.stderr
    assert "models changed" in w.stderr and "Traceback" not in w.stderr


def test_an_immediate_switch_to_the_target_ends_the_blue_green_switch(world):
    add_target(world)
    rows = queue.claim_target(world, "t", 5)
    queue.complete_target(world, "t", TARGET, rows, [new_vec(r.text) for r in rows])
    world.execute("SELECT set_embedding_model(%s, 'openai', 384, NULL, true)", [TARGET])
    assert world.execute("SELECT count(*) FROM embedding_models WHERE is_target").fetchone() == (0,)
    assert world.execute("SELECT count(*) FROM embedding_vectors").fetchone() == (0,)
    assert world.execute("SELECT count(*) FROM embedding_target_queue").fetchone() == (0,)
    assert pending(world) == 18  # the old way: every row re-embedded, keywords meanwhile


def test_a_promotion_maps_occupations_with_the_new_models_taxonomy(world, tmp_path):
    # occupations are of a model's space: after a promotion no row keeps
    # one found by the old model's vectors; the new model's taxonomy (its
    # own `taxonomy load --model`) maps them, and a rollback maps them back
    from jobmatch.taxonomy import load, read_occupations
    from test_taxonomy import esco_zip

    occupations = read_occupations(esco_zip(tmp_path / "esco.zip"))
    load(world, occupations, Fake(MODEL, old_vec), MODEL)

    def mapped():
        return world.execute(
            "SELECT count(job_occupation), count(*) FILTER (WHERE job_occupation"
            " IS NOT DISTINCT FROM jobmatch_nearest_occupation(job_embedding_model,"
            " job_role_embedding, job_embedding)) FROM canonical_jobs").fetchone()

    before = world.execute("SELECT id, job_occupation FROM canonical_jobs ORDER BY id").fetchall()
    assert mapped() == (12, 12)
    add_target(world)
    drain_target(world, Fake(TARGET, new_vec), "t")
    world.execute("SELECT promote_embedding_model(%s)", [TARGET])
    assert mapped() == (0, 12)  # no taxonomy for the new model yet: the role term counts
    load(world, occupations, Fake(TARGET, new_vec), TARGET)
    assert mapped() == (12, 12)
    world.execute("SELECT promote_embedding_model(%s)", [MODEL])
    assert world.execute("SELECT id, job_occupation FROM canonical_jobs ORDER BY id"
                         ).fetchall() == before


@pytest.mark.slow
def test_the_daily_budget_counts_the_targets_backfill(oconn, dsn, server):
    # the target's backfill is paid for too: a budget reached by either
    # model's spend today pauses both queues
    for i in range(4):
        job(oconn, title=f"Welder {i}", posted_date="now()")
    assert run_worker(dsn, server, "--once").returncode == 0
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "jobmatch.cli", "model", "add",
                           "text-embedding-3-large", "--dimensions", "256"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    target = "text-embedding-3-large@256"
    # the active model spent nothing today beyond the first fill; the
    # target's budget share is spent (recorded as its own usage)
    oconn.execute("SELECT record_embedding_usage(%s, 1, 1, 1000000)", [target])
    server.reset()
    proc = run_worker(dsn, server, "--once", "--daily-token-budget", "1000000")
    assert proc.returncode == 0, proc.stderr
    assert server.requests == []
    assert oconn.execute("SELECT count(*) FROM embedding_vectors").fetchone() == (0,)
    assert "daily token budget reached, embedding paused" in proc.stderr
    proc = run_worker(dsn, server, "--once", "--daily-token-budget", "2000000")
    assert proc.returncode == 0, proc.stderr
    assert oconn.execute("SELECT count(*) FROM embedding_vectors WHERE model = %s",
                         [target]).fetchone() == (4,)
