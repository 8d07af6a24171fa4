"""Least privilege: the bot role can only call match_jobs; the worker role
can only use the queue API and its write path."""

import re
from pathlib import Path

import psycopg
import pytest

from support.data import MODEL, job, unit, user
from jobmatch import queue

DENIED = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def data(conn):
    user(conn, 1, job_roles=["Welder"], technical_skills=["TIG"])
    job(conn, title="Welder", ai_required_skills=["TIG"])


def as_role(conn, role):
    conn.execute(f"SET ROLE {role}")
    return conn


def test_bot_can_call_match_jobs(conn, data):
    bot = as_role(conn, "jobmatch_bot")
    assert [r[1] for r in bot.execute("SELECT * FROM match_jobs(1, 10)")] == ["Welder"]


def test_bot_can_call_match_users_and_next_job_alerts(conn, data):
    conn.execute("UPDATE user_preferences SET user_embedding = %s, embedding_model = %s",
                 [unit(1), MODEL])
    conn.execute("UPDATE canonical_jobs SET job_embedding = %s, job_embedding_model = %s",
                 [unit(1), MODEL])
    (job_id,) = conn.execute("SELECT id FROM canonical_jobs").fetchone()
    bot = as_role(conn, "jobmatch_bot")
    assert [r[0] for r in bot.execute("SELECT * FROM match_users(%s, 10)", [job_id])] == [1]
    assert [r[:2] for r in bot.execute("SELECT * FROM next_job_alerts(10)")] == [(1, job_id)]
    # the bot reads what it sent only through the function
    with pytest.raises(DENIED):
        bot.execute("SELECT * FROM job_alerts")


@pytest.mark.parametrize("statement", [
    "SELECT * FROM user_preferences",
    "SELECT user_embedding FROM user_preferences WHERE user_id = 1",
    "SELECT * FROM canonical_jobs",
    "SELECT * FROM embedding_queue",
    "INSERT INTO canonical_jobs (title) VALUES ('spam')",
    "UPDATE user_preferences SET job_roles = ARRAY['x']",
    "SELECT * FROM claim_embedding_batch('bot', 10)",
    "SELECT fail_embeddings('bot', ARRAY['user'], ARRAY[1::bigint], 'x')",
    "SELECT jobmatch_user_profile_text(u) FROM user_preferences u",
    "SELECT * FROM embedding_health",
    "SELECT set_embedding_model('m', 'openai', 3, NULL, true)",
    "SELECT * FROM job_alerts",
    "INSERT INTO job_alerts (job_id, user_id, match_score) VALUES (1, 1, 1)",
    "DELETE FROM alerted_jobs",
    "SELECT * FROM jobmatch_user_candidates(NULL, NULL, NULL, 10)",
])
def test_bot_cannot_read_seekers_write_or_touch_the_queue(conn, data, statement):
    bot = as_role(conn, "jobmatch_bot")
    with pytest.raises(DENIED):
        bot.execute(statement)


def test_worker_can_use_the_queue_api(conn, data):
    worker = as_role(conn, "jobmatch_worker")
    assert worker.execute("SELECT model FROM embedding_models WHERE is_active").fetchone() == \
        (MODEL,)
    rows = queue.claim(worker, "w", 10)
    assert {r.entity_type for r in rows} == {"job", "user"}
    assert queue.complete(worker, "w", MODEL, rows[:1], [unit(1)]) == 1
    queue.fail(worker, "w", rows[1:], "boom")
    queue.record_usage(worker, MODEL, 1, 1, 10)
    assert queue.pending(worker) == 1


@pytest.mark.parametrize("statement", [
    "SELECT * FROM user_preferences",
    "SELECT * FROM canonical_jobs",
    "UPDATE canonical_jobs SET job_embedding = NULL",
    "DELETE FROM embedding_queue",
    "SELECT * FROM match_jobs(1, 10)",
    "SELECT * FROM match_users(1, 10)",
    "SELECT * FROM next_job_alerts(10)",
    "SELECT requeue_dead_letters()",
    "SELECT set_embedding_model('m', 'openai', 3, NULL, true)",
])
def test_worker_cannot_read_or_write_tables_directly(conn, data, statement):
    worker = as_role(conn, "jobmatch_worker")
    with pytest.raises(DENIED):
        worker.execute(statement)


def test_a_writer_role_gets_rows_queued_without_queue_rights(conn):
    conn.execute("DO $$ BEGIN CREATE ROLE test_app_writer; EXCEPTION WHEN duplicate_object"
                 " THEN NULL; END $$")  # roles outlive the test database
    conn.execute("GRANT INSERT, UPDATE, DELETE, SELECT ON canonical_jobs, user_preferences"
                 " TO test_app_writer")
    app = as_role(conn, "test_app_writer")
    app.execute("INSERT INTO user_preferences (user_id, job_roles) VALUES (5, ARRAY['Cook'])")
    app.execute("DELETE FROM user_preferences WHERE user_id = 5")
    with pytest.raises(DENIED):
        app.execute("SELECT * FROM embedding_queue")
    conn.execute("RESET ROLE")
    assert conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0] == 0


def test_definer_functions_pin_search_path(conn):
    rows = conn.execute(
        "SELECT p.proname, p.proconfig FROM pg_proc p WHERE p.prosecdef"
        " AND p.pronamespace = 'public'::regnamespace").fetchall()
    assert len(rows) >= 10
    for name, config in rows:
        assert "search_path=public, pg_temp" in (config or []), name


def test_role_names_are_configurable(conn):
    conn.execute("SELECT jobmatch_setup_roles('test_custom_bot', 'test_custom_worker')")
    assert conn.execute("SELECT has_function_privilege('test_custom_bot',"
                        " 'match_jobs(bigint, integer)', 'EXECUTE')").fetchone() == (True,)
    assert conn.execute("SELECT has_function_privilege('test_custom_bot',"
                        " 'claim_embedding_batch(text, integer, interval)', 'EXECUTE')"
                        ).fetchone() == (False,)


DB = Path(__file__).resolve().parents[1] / "db"
DEFINED = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:public\.)?(\w+)\s*\(", re.I)


def defined_functions() -> set[str]:
    return {m.group(1).lower() for f in DB.rglob("*.sql") for m in DEFINED.finditer(f.read_text())}


def test_every_function_is_api_or_named_as_internal(conn):
    api = dict(conn.execute("SELECT function_name, caller FROM jobmatch_api()").fetchall())
    names = defined_functions()
    assert {"match_jobs", "complete_embeddings", "jobmatch_claim"} <= names  # the scan works
    assert sorted(n for n in names if n not in api and not n.startswith("jobmatch_")) == []
    # the list names only functions that exist
    assert set(api) <= {r[0] for r in conn.execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace")}


def test_no_function_of_ours_is_executable_by_public_unless_listed(conn):
    public = conn.execute(
        "SELECT p.proname FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))"
        " AS a WHERE p.pronamespace = 'public'::regnamespace AND a.grantee = 0"
        " AND a.privilege_type = 'EXECUTE'").fetchall()
    ours = defined_functions()
    listed = {r[0] for r in conn.execute(
        "SELECT function_name FROM jobmatch_api() WHERE caller = 'public'")}
    assert sorted({n for (n,) in public} & ours) == sorted(listed)


def test_a_new_internal_function_loses_public_execute_on_the_next_deploy(conn):
    conn.execute("CREATE FUNCTION jobmatch_test_helper() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    probe = "SELECT has_function_privilege('public', 'jobmatch_test_helper()', 'EXECUTE')"
    assert conn.execute(probe).fetchone() == (True,)  # PostgreSQL's default
    conn.execute("SELECT jobmatch_secure_functions()")
    assert conn.execute(probe).fetchone() == (False,)


def test_grants_follow_the_api_list(conn):
    rows = conn.execute("SELECT function_name, caller FROM jobmatch_api()").fetchall()
    for name, caller in rows:
        (sig,) = conn.execute("SELECT oid::regprocedure::text FROM pg_proc WHERE proname = %s"
                              " AND pronamespace = 'public'::regnamespace", [name]).fetchone()
        for role in ("jobmatch_bot", "jobmatch_worker"):
            (may,) = conn.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')",
                                  [role, sig]).fetchone()
            assert may == (caller in (role.removeprefix("jobmatch_"), "public")), (name, role)
