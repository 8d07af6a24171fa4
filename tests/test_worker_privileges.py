"""A worker whose login role lacks a right it needs says which one at start
and exits 2 (a person must grant it; systemd does not restart exit 2),
before it claims or embeds anything."""

import pytest
from psycopg.conninfo import make_conninfo

from support.data import job
from support.common import wait_for
from support.worker import assert_embedded, events, pending, run_worker

# What the worker calls and reads, as jobmatch_setup_roles grants it to jobmatch_worker.
FUNCTIONS = {
    "claim_embedding_batch": "claim_embedding_batch(text, integer, interval)",
    "complete_embeddings": ("complete_embeddings(text, text, text[], bigint[], uuid[], vector[],"
                            " vector[])"),
    "fail_embeddings": "fail_embeddings(text, text[], bigint[], text)",
    "release_embeddings": "release_embeddings(text, text[], bigint[])",
    "record_embedding_usage": "record_embedding_usage(text, bigint, bigint, bigint)",
    "enqueue_stale_embeddings": "enqueue_stale_embeddings(interval, integer, integer)",
    "embedding_budget_state": "embedding_budget_state(text, bigint, numeric)",
    # a model switch's target (jobmatch model add): the worker embeds both models
    "claim_target_embeddings": "claim_target_embeddings(text, integer, interval)",
    "complete_target_embeddings": ("complete_target_embeddings(text, text, text[], bigint[],"
                                   " uuid[], vector[], vector[])"),
    "fail_target_embeddings": "fail_target_embeddings(text, text[], bigint[], text)",
    "release_target_embeddings": "release_target_embeddings(text, text[], bigint[])",
}
TABLES = ("embedding_models", "embedding_queue", "embedding_usage")


def login_role(conn, name: str) -> None:
    """A login role with no rights (roles outlive the test database)."""
    conn.execute(f"DO $$ BEGIN CREATE ROLE {name} LOGIN; EXCEPTION WHEN duplicate_object"
                 " THEN NULL; END $$")
    conn.execute(f"REVOKE jobmatch_worker FROM {name}")


def as_login(dsn: str, role: str) -> str:
    return make_conninfo(dsn, user=role)


def queue_state(conn) -> list[tuple]:
    return conn.execute("SELECT entity_id, attempts, last_error, locked_by FROM embedding_queue"
                        " ORDER BY entity_id").fetchall()


def test_a_login_role_in_the_worker_role_runs(oconn, dsn, server):
    login_role(oconn, "test_worker_login")
    oconn.execute("GRANT jobmatch_worker TO test_worker_login")
    ids = [job(oconn, title=f"Welder {i}") for i in range(3)]
    proc = run_worker(as_login(dsn, "test_worker_login"), server, "--once",
                      "--daily-token-budget", "100000")
    assert proc.returncode == 0, proc.stderr
    assert_embedded(oconn, [("job", i) for i in ids])
    assert pending(oconn) == 0


@pytest.mark.parametrize("missing", ["complete_embeddings", "claim_embedding_batch",
                                     "embedding_models", "embedding_queue"])
def test_a_login_role_missing_a_grant_exits_2_and_claims_nothing(oconn, dsn, server, missing):
    role = "test_worker_partial"
    login_role(oconn, role)
    oconn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    # every right the worker needs but one (this test's database is new: no old grants)
    for name, signature in FUNCTIONS.items():
        if name != missing:
            oconn.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    for table in TABLES:
        if table != missing:
            oconn.execute(f"GRANT SELECT ON {table} TO {role}")
    ids = [job(oconn, title=f"Welder {i}") for i in range(3)]

    proc = run_worker(as_login(dsn, role), server, "--once")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (error,) = [e for e in events(proc.stderr) if e["level"] == "error"]
    right = ("EXECUTE on " + FUNCTIONS[missing].replace(" ", "")) if missing in FUNCTIONS \
        else f"SELECT on {missing}"
    assert error["msg"] == f"jobmatch worker: role {role} lacks {right}; GRANT jobmatch_worker" \
                           f" TO {role}"
    assert error["exit_code"] == 2
    # nothing claimed, nothing embedded, nothing charged
    assert server.requests == []
    assert queue_state(oconn) == [(i, 0, None, None) for i in ids]


def test_a_role_without_a_worker_role_to_grant_is_told_the_grant_itself(oconn, dsn, server):
    role = "test_worker_bare"
    login_role(oconn, role)
    proc = run_worker(as_login(dsn, role), server, "--once",
                      env={"JOBMATCH_WORKER_ROLE": "test_no_such_role"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (error,) = [e for e in events(proc.stderr) if e["level"] == "error"]
    assert error["msg"].startswith(f"jobmatch worker: role {role} lacks EXECUTE on"
                                   " claim_embedding_batch(text,integer,interval), ")
    assert "SELECT on embedding_models" in error["msg"]
    assert (f"GRANT EXECUTE ON FUNCTION claim_embedding_batch(text,integer,interval) TO {role}"
            in error["msg"])
    assert server.requests == []


def test_a_right_revoked_while_running_exits_2_without_a_traceback(oconn, dsn, server, workers):
    login_role(oconn, "test_worker_login")
    oconn.execute("GRANT jobmatch_worker TO test_worker_login")
    first = job(oconn, title="Welder")
    w = workers(as_login(dsn, "test_worker_login"), server, "--refresh-interval", "0")
    wait_for(lambda: pending(oconn) == 0, what="the worker to embed the first job")
    oconn.execute(f"REVOKE EXECUTE ON FUNCTION {FUNCTIONS['claim_embedding_batch']}"
                  " FROM jobmatch_worker")
    job(oconn, title="Cook")  # its NOTIFY wakes the worker, whose claim is refused
    assert w.wait(timeout=15) == 2, w.stderr
    assert "Traceback" not in w.stderr
    (error,) = [e for e in events(w.stderr) if e["level"] == "error"]
    assert error["msg"] == ("jobmatch worker: role test_worker_login: permission denied for"
                            " function claim_embedding_batch; GRANT jobmatch_worker TO"
                            " test_worker_login")
    assert len(server.inputs) == 2 and pending(oconn) == 1  # its profile and role texts
    assert_embedded(oconn, [("job", first)])
