"""Every SECURITY DEFINER path, called by a hostile login role of each kind
(bot, worker, an application that writes jobs and preferences): the caller
first plants, in its own pg_temp, a table under every name a definer
function could reach (each public table and view, and the temp table
complete_embeddings once used) with row and statement triggers that try to
make the caller superuser, and functions shadowing ours. Nothing it planted
may run: the definer functions touch only the owner's objects."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from support.cli import jobmatch
from support.data import LOCAL_MODEL, MODEL, job, unit, user
from jobmatch import db as jm_db
from jobmatch import queue
from jobmatch.migrate import SchemaExposed, migrate

PASSWORD = "hostile-test-password"
ROLES = {"bot": "test_hostile_bot", "worker": "test_hostile_worker",
         "writer": "test_hostile_writer"}

# The grab runs as whoever fires it: as the caller it fails quietly (logged);
# as a definer's owner it would make the caller superuser. Either way the
# log shows that it ran.
PLANT_GRAB = """
CREATE TEMP TABLE grab_log (fired_as text, event text);
CREATE FUNCTION pg_temp.grab() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO pg_temp.grab_log VALUES (current_user, TG_TABLE_NAME || ' ' || TG_OP);
    BEGIN
        EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END $f$;
"""


@pytest.fixture
def roles(conn):
    for kind, name in ROLES.items():
        conn.execute(f"DO $$ BEGIN CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}';"
                     " EXCEPTION WHEN duplicate_object THEN NULL; END $$")  # cluster-wide
        conn.execute(f"ALTER ROLE {name} NOSUPERUSER LOGIN PASSWORD '{PASSWORD}'")
        if kind != "writer":
            conn.execute(f"GRANT jobmatch_{kind} TO {name}")
    conn.execute("GRANT USAGE ON SCHEMA public TO test_hostile_writer")
    conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
                 " ON canonical_jobs, user_preferences TO test_hostile_writer")
    conn.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO test_hostile_writer")
    yield ROLES
    conn.execute("REVOKE ALL ON canonical_jobs, user_preferences FROM test_hostile_writer")
    conn.execute("REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM test_hostile_writer")
    for name in ROLES.values():
        conn.execute(f"ALTER ROLE {name} NOSUPERUSER")


def login(conn, role: str) -> psycopg.Connection:
    info = conninfo_to_dict(conn.info.dsn)
    info.update(user=role, password=PASSWORD)
    return jm_db.connect(make_conninfo(**info), autocommit=True)


def plant_everything(hostile: psycopg.Connection, conn) -> None:
    """Temp tables with triggers under every public relation's name and the
    old temp table's, and pg_temp functions under every jobmatch function's."""
    hostile.execute(PLANT_GRAB)
    names = [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
        " AND c.relkind IN ('r', 'v', 'm', 'p', 'f')")]
    names += ["embedding_results", "new_rows", "old_rows", "input", "settled"]
    for name in names:
        hostile.execute(f'CREATE TEMP TABLE "{name}" (entity_type text, entity_id bigint,'
                        f' written boolean, id bigint, user_id bigint)')
        for when, level in [("BEFORE", "ROW"), ("AFTER", "STATEMENT")]:
            hostile.execute(
                f'CREATE TRIGGER grab_{level.lower()} {when} INSERT OR UPDATE OR DELETE'
                f' ON pg_temp."{name}" FOR EACH {level} EXECUTE FUNCTION pg_temp.grab()')
    # Functions are never looked up in pg_temp unqualified; planted anyway,
    # with the names and argument types of ours, so a change that qualified
    # a call with pg_temp (or put it first in search_path) would show here.
    for name, args in conn.execute(
            "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace AND p.prolang <> 13"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid"
            "                 AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e')"
            " AND p.prorettype <> 'trigger'::regtype"):
        arg_types = ", ".join(a.split(" ", 1)[1] if " " in a else a
                              for a in args.split(", ")) if args else ""
        if "user_preferences" in arg_types or "canonical_jobs" in arg_types \
                or "embedding_models" in arg_types:
            continue  # row types of tables the caller cannot shadow in pg_temp anyway
        try:
            hostile.execute(
                f"CREATE FUNCTION pg_temp.{name}({arg_types}) RETURNS void LANGUAGE sql"
                " AS $f$ INSERT INTO pg_temp.grab_log VALUES (current_user, 'function') $f$")
        except psycopg.Error:
            pass  # a return type the stub cannot take: the table triggers still stand


def assert_nothing_gained(conn, hostile: psycopg.Connection, role: str) -> None:
    assert hostile.execute("SELECT * FROM pg_temp.grab_log").fetchall() == []
    assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s",
                        [role]).fetchone() == (False,)


@pytest.fixture
def data(conn):
    user(conn, 1, job_roles=["Welder"], technical_skills=["TIG"],
         preferred_locations=["Lagos"])
    user(conn, 2, job_roles=["Cook"])
    job(conn, title="Welder", ai_required_skills=["TIG"], ai_city="Lagos",
        posted_date="now()")
    job(conn, title="Cook", posted_date="now()")


def test_the_reported_attack_on_complete_embeddings_gains_nothing(conn, roles, data):
    # The reproduction, verbatim in spirit: a worker login role plants
    # pg_temp.embedding_results with a trigger, then calls complete_embeddings.
    with login(conn, roles["worker"]) as hostile:
        hostile.execute(PLANT_GRAB)
        hostile.execute("CREATE TEMP TABLE embedding_results"
                        " (entity_type text, entity_id bigint, written boolean)")
        hostile.execute("CREATE TRIGGER grab BEFORE INSERT ON pg_temp.embedding_results"
                        " FOR EACH ROW EXECUTE FUNCTION pg_temp.grab()")
        hostile.execute("SELECT complete_embeddings('w', %s, ARRAY['job'], ARRAY[-1::bigint],"
                        " ARRAY[gen_random_uuid()], ARRAY[%s])", [MODEL, unit(1)])
        assert_nothing_gained(conn, hostile, roles["worker"])


def with_taxonomy(conn) -> None:
    """Two occupations with vectors of the model: the write-back's nearest-
    occupation search and the occupation reason then run for real."""
    conn.execute("INSERT INTO occupations (code, isco_group, label) VALUES"
                 " ('7212.1', '7212', 'welder'), ('5120.1', '5120', 'cook')")
    conn.execute("INSERT INTO occupation_vectors (model, code, text_hash, embedding) VALUES"
                 " (%s, '7212.1', md5('w')::uuid, %s), (%s, '5120.1', md5('c')::uuid, %s)",
                 [MODEL, unit(1), MODEL, unit(2)])


def test_every_worker_definer_path_ignores_a_planted_pg_temp(conn, roles, data):
    with_taxonomy(conn)
    with login(conn, roles["worker"]) as hostile:
        plant_everything(hostile, conn)
        rows = queue.claim(hostile, "w", 10)
        assert len(rows) == 4
        queue.complete(hostile, "w", MODEL, rows[:2], [unit(1), unit(2)])
        # the write-back found each row's occupation in the owner's table
        assert sorted(o for (o,) in conn.execute(
            "SELECT job_occupation FROM canonical_jobs WHERE job_occupation IS NOT NULL UNION ALL"
            " SELECT user_occupation FROM user_preferences WHERE user_occupation IS NOT NULL")
            ) == ["5120.1", "7212.1"]
        queue.fail(hostile, "w", rows[2:3], "boom")
        queue.release(hostile, "w")
        queue.record_usage(hostile, MODEL, 1, 2, 3)
        hostile.execute("SELECT enqueue_stale_embeddings(NULL, 1, 10)")
        hostile.execute("SELECT active_embedding_model()")
        hostile.execute("SELECT * FROM embedding_budget_state(%s, 1, 1)", [MODEL])
        # the Batch API backfill's path
        conn.execute("UPDATE embedding_queue SET priority = 1, locked_by = NULL,"
                     " locked_until = NULL, run_after = now()")
        backfill = hostile.execute("SELECT entity_type, entity_id, text_hash"
                                   " FROM claim_embedding_backfill('b', 10)").fetchall()
        assert backfill
        hostile.execute("SELECT record_api_batch('batch_x', 'b', %s, 'file-x', %s, %s, %s, %s)",
                        [MODEL, [f"r{i}" for i in range(len(backfill))],
                         [r[0] for r in backfill], [r[1] for r in backfill],
                         [r[2] for r in backfill]])
        hostile.execute("SELECT record_batch_usage(%s, 1, 10)", [MODEL])
        hostile.execute("SELECT finish_api_batch('batch_x', 'expired', 'gone')")
        # a parked vector's write-back runs inside claim_embedding_batch
        (row,) = [r for r in queue.claim(hostile, "w", 10) if r.entity_type == "user"][:1]
        with conn.transaction():
            conn.execute("SELECT 1 FROM user_preferences WHERE user_id = %s FOR UPDATE",
                         [row.entity_id])
            assert queue.complete(hostile, "w", MODEL, [row], [unit(3)]) == 0
        conn.execute("UPDATE embedding_queue SET run_after = now()")
        queue.claim(hostile, "w", 10)
        assert_nothing_gained(conn, hostile, roles["worker"])


def test_match_jobs_ignores_a_planted_pg_temp(conn, roles, data):
    conn.execute("UPDATE user_preferences SET user_embedding = %s, embedding_model = %s"
                 " WHERE user_id = 1", [unit(1), MODEL])
    conn.execute("UPDATE canonical_jobs SET job_embedding = %s, job_embedding_model = %s",
                 [unit(1), MODEL])
    with_taxonomy(conn)  # the occupation term and reason, read from the owner's tables
    conn.execute("UPDATE user_preferences SET user_occupation = '7212.1' WHERE user_id = 1")
    conn.execute("UPDATE canonical_jobs SET job_occupation = '7212.1' WHERE title = 'Welder'")
    with login(conn, roles["bot"]) as hostile:
        plant_everything(hostile, conn)
        reasons = hostile.execute("SELECT title, match_reasons FROM match_jobs(1, 10)").fetchall()
        assert "Occupation: welder" in dict(reasons)["Welder"]
        semantic = hostile.execute("SELECT title, match_method FROM match_jobs(1, 10)").fetchall()
        keyword = hostile.execute("SELECT title, match_method FROM match_jobs(2, 10)").fetchall()
        assert ("Welder", "semantic") in semantic
        assert ("Cook", "keyword") in keyword
        assert_nothing_gained(conn, hostile, roles["bot"])


def test_match_users_and_the_alert_feed_ignore_a_planted_pg_temp(conn, roles, data):
    conn.execute("UPDATE user_preferences SET user_embedding = %s, embedding_model = %s",
                 [unit(1), MODEL])
    conn.execute("UPDATE canonical_jobs SET job_embedding = %s, job_embedding_model = %s",
                 [unit(1), MODEL])
    (welder,) = conn.execute("SELECT id FROM canonical_jobs WHERE title = 'Welder'").fetchone()
    expected = sorted((u, j) for (j,) in conn.execute("SELECT id FROM canonical_jobs")
                      for (u,) in conn.execute("SELECT user_id FROM match_users(%s)", [j]))
    assert (1, welder) in expected and len(expected) >= 2
    with login(conn, roles["bot"]) as hostile:
        plant_everything(hostile, conn)
        # the relevance floor's per-seeker search runs in there too
        assert [r[0] for r in hostile.execute("SELECT * FROM match_users(%s, 10)", [welder])
                ] == [u for u, j in expected if j == welder]
        assert sorted(r[:2] for r in hostile.execute("SELECT * FROM next_job_alerts(10)")) \
            == expected
        assert hostile.execute("SELECT * FROM next_job_alerts(10)").fetchall() == []
        assert_nothing_gained(conn, hostile, roles["bot"])
    # the feed wrote the owner's table, not the planted one
    assert sorted(conn.execute("SELECT user_id, job_id FROM job_alerts").fetchall()) == expected
    # a worker or an application may not call either
    for kind in ("worker", "writer"):
        with login(conn, roles[kind]) as other:
            for call in ("SELECT * FROM match_users(1, 10)", "SELECT * FROM next_job_alerts(10)"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    other.execute(call)


def test_the_queue_triggers_ignore_a_writers_planted_pg_temp(conn, roles, data):
    with login(conn, roles["writer"]) as hostile:
        plant_everything(hostile, conn)  # its own statements name public.* below
        hostile.execute("INSERT INTO public.canonical_jobs (title) VALUES ('Baker')")
        hostile.execute("UPDATE public.canonical_jobs SET title = title || ' II'")
        hostile.execute("INSERT INTO public.user_preferences (user_id, job_roles)"
                        " VALUES (3, ARRAY['Baker'])")
        hostile.execute("UPDATE public.user_preferences SET job_roles = ARRAY['Chef']")
        hostile.execute("DELETE FROM public.canonical_jobs WHERE title = 'Baker II'")
        hostile.execute("DELETE FROM public.user_preferences WHERE user_id = 3")
        hostile.execute("TRUNCATE public.canonical_jobs")
        assert_nothing_gained(conn, hostile, roles["writer"])
    # and the triggers did their work as the owner
    assert conn.execute("SELECT count(*) FROM embedding_queue WHERE entity_type = 'user'"
                        ).fetchone() == (2,)


def test_a_session_flag_cannot_skip_the_queue(conn, roles, data):
    # The write-back used to skip the triggers' check while a custom setting
    # was on: any session could set it and edit texts without queueing them.
    conn.execute("DELETE FROM embedding_queue")
    with login(conn, roles["writer"]) as writer:
        writer.execute("SET jobmatch.writing_vectors = on")
        writer.execute("UPDATE canonical_jobs SET title = 'Senior Welder' WHERE title = 'Welder'")
        writer.execute("UPDATE user_preferences SET job_roles = ARRAY['Baker'] WHERE user_id = 2")
        # the vector columns are jobmatch's: a write to them is refused
        # (tests/test_hostile_review.py), flag or not
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("UPDATE canonical_jobs SET job_embedding_updated_at = now(),"
                           " title = 'Head Cook' WHERE title = 'Cook'")
    assert conn.execute("SELECT entity_type, count(*) FROM embedding_queue GROUP BY 1 ORDER BY 1"
                        ).fetchall() == [("job", 1), ("user", 1)]


# ----------------------------------------------------- the schema names resolve in

# An overload a role with CREATE on public could add: match_jobs calls
# jobmatch_word_share(text[], tsvector, '{b,c}'), and PostgreSQL sends an
# unknown literal to a text parameter before a "char"[] one, so this would
# run as the owner on every semantic match (CVE-2018-1058's class).
SHADOW = """CREATE FUNCTION public.jobmatch_word_share(wanted text[], document tsvector,
                                                weights text)
RETURNS double precision LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
    RETURN 0;
EXCEPTION WHEN OTHERS THEN
    RETURN 0;
END $f$"""


def health(dsn):
    return jobmatch(dsn, "health", check=False)


def test_an_old_clusters_create_on_public_is_taken_back_by_migrate(conn, dsn, roles, data):
    # A cluster created before PostgreSQL 15 (or pg_upgrade'd from one)
    # grants CREATE on public to PUBLIC; a DBA may have granted it to the
    # bot role too.
    conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    conn.execute("GRANT CREATE ON SCHEMA public TO jobmatch_bot")
    exposed = {r[1] for r in conn.execute("SELECT * FROM jobmatch_schema_exposure()")
               if r[0] == "create"}
    assert set(roles.values()) <= exposed
    assert "may CREATE in schema public" in health(dsn).stdout
    result = migrate(dsn, LOCAL_MODEL)
    assert result["may_create_in_public"] == []
    assert conn.execute("SELECT * FROM jobmatch_schema_exposure()").fetchall() == []
    for kind, role in roles.items():
        with login(conn, role) as hostile:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                hostile.execute(SHADOW)
            if kind == "bot":
                assert hostile.execute("SELECT count(*) FROM match_jobs(1, 10)").fetchone()[0] > 0
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s",
                            [role]).fetchone() == (False,)
    out = health(dsn)
    assert out.returncode == 0 and "SECURITY" not in out.stdout


def test_a_function_planted_in_public_fails_migrate_and_health(conn, dsn, roles, data):
    conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    with login(conn, roles["bot"]) as hostile:
        hostile.execute(SHADOW)
        hostile.execute("CREATE FUNCTION public.same(a text, b text) RETURNS boolean"
                        " LANGUAGE sql AS 'SELECT a = b'")
        hostile.execute("CREATE OPERATOR public.=== (leftarg = text, rightarg = text,"
                        " function = public.same)")
    planted = conn.execute("SELECT * FROM jobmatch_schema_exposure() WHERE kind <> 'create'"
                           ).fetchall()
    assert planted == [("function", "jobmatch_word_share(text[],tsvector,text)",
                        roles["bot"]),
                       ("operator", "===(text,text)", roles["bot"])]
    # public.same shadows no name a definer function calls: not reported
    with pytest.raises(SchemaExposed, match=r"jobmatch_word_share\(text\[\],tsvector,text\)"
                                            r" owned by test_hostile_bot.*===\(text,text\)"):
        migrate(dsn, LOCAL_MODEL)
    # the deploy still took CREATE back, so nothing more can be planted
    with login(conn, roles["writer"]) as writer:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute(SHADOW.replace("jobmatch_word_share", "jobmatch_words"))
    out = health(dsn)
    assert out.returncode == 1
    assert ("SECURITY:     function jobmatch_word_share(text[],tsvector,text) in public is"
            " owned by test_hostile_bot") in out.stdout
    conn.execute("DROP OPERATOR public.=== (text, text)")
    conn.execute("DROP FUNCTION public.same(text, text),"
                 " public.jobmatch_word_share(text[], tsvector, text)")
    assert migrate(dsn, LOCAL_MODEL)["may_create_in_public"] == []
    assert health(dsn).returncode == 0


def test_definer_functions_are_not_executable_by_public(conn):
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace"
        " AND has_function_privilege('public', p.oid, 'EXECUTE')").fetchall()
    assert rows == []


def test_no_definer_function_creates_temp_objects(conn):
    # The whole class of the attack: nothing a definer runs may name pg_temp
    # or create a temporary object.
    rows = conn.execute(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"
        " AND (p.prosrc ~* 'pg_temp\\.' OR p.prosrc ~* 'create\\s+(temp|temporary)\\s')"
    ).fetchall()
    assert rows == []
