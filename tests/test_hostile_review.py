"""Review of the hostile callers' reach beyond what test_hostile_callers.py
plants: an application writing the vector bookkeeping itself, a worker
writing rows it never claimed, a bot steering a definer function's cost,
and session settings a definer function leaves behind."""

from __future__ import annotations

import psycopg
import pytest

from support.data import MODEL, drain_with, unit
from test_hostile_callers import data, login, roles  # noqa: F401  (fixtures)

DENIED = psycopg.errors.InsufficientPrivilege


def vector_of(conn, table, key, value):
    column = "job_embedding" if table == "canonical_jobs" else "user_embedding"
    return conn.execute(f"SELECT {column}::text FROM {table} WHERE {key} = %s",
                        [value]).fetchone()[0]


def forged_hash(conn, table, key, value, changes: dict) -> str:
    """The hash the profile text would have after `changes`: anyone can
    compute it (md5 of a text built by code that is public)."""
    fn = "jobmatch_job_profile_text" if table == "canonical_jobs" else "jobmatch_user_profile_text"
    return conn.execute(
        f"SELECT jobmatch_text_hash({fn}(jsonb_populate_record(t, %s::jsonb)))"
        f" FROM {table} AS t WHERE {key} = %s",
        [psycopg.types.json.Jsonb(changes), value]).fetchone()[0]


def test_a_writer_cannot_forge_the_hash_to_keep_a_vector_for_a_new_text(conn, roles, data):
    # The statement trigger checks a row whose vector columns the statement
    # wrote by its stored hash alone. An application that writes a new text
    # with the new text's hash (md5 of a public formula) and a fresh
    # timestamp kept the old vector for the new text, and nothing ever
    # queued it: the seeker is matched as a Welder while asking for Baker.
    drain_with(conn, lambda text: unit(abs(hash(text)) % 1000))
    assert conn.execute("SELECT count(*) FROM embedding_queue").fetchone() == (0,)
    user_hash = forged_hash(conn, "user_preferences", "user_id", 1, {"job_roles": ["Baker"]})
    (job_id,) = conn.execute("SELECT id FROM canonical_jobs WHERE title = 'Welder'").fetchone()
    job_hash = forged_hash(conn, "canonical_jobs", "id", job_id, {"title": "Baker"})
    with login(conn, roles["writer"]) as writer:
        for statement, args in [
            ("UPDATE user_preferences SET job_roles = ARRAY['Baker'],"
             " embedding_updated_at = now(), embedding_hash = %s WHERE user_id = 1", [user_hash]),
            ("UPDATE canonical_jobs SET title = 'Baker', job_embedding_updated_at = now(),"
             " job_embedding_hash = %s WHERE id = %s", [job_hash, job_id]),
        ]:
            try:
                writer.execute(statement, args)
            except DENIED:
                pass  # refused outright: as good as queued
    # whatever happened, no row holds a vector of a text it no longer has
    stale = conn.execute(
        "SELECT 'user', user_id FROM user_preferences WHERE user_embedding IS NOT NULL"
        "   AND embedding_text IS DISTINCT FROM jobmatch_user_profile_text(user_preferences)"
        "   AND user_id NOT IN (SELECT entity_id FROM embedding_queue WHERE entity_type = 'user')"
        " UNION ALL"
        " SELECT 'job', id FROM canonical_jobs WHERE job_embedding IS NOT NULL"
        "   AND job_embedding_text IS DISTINCT FROM jobmatch_job_profile_text(canonical_jobs)"
        "   AND id NOT IN (SELECT entity_id FROM embedding_queue WHERE entity_type = 'job')"
    ).fetchall()
    assert stale == []


def test_a_writer_cannot_write_vectors_or_their_bookkeeping(conn, roles, data):
    # Vectors are the write-back's (hash-checked, from the claimed text):
    # an application that wrote one directly put any job in front of every
    # seeker (or any seeker in every job's audience) with no text change,
    # so no trigger ever looked. Its own columns stay writable.
    drain_with(conn, lambda text: unit(abs(hash(text)) % 1000))
    (job_id,) = conn.execute("SELECT id FROM canonical_jobs WHERE title = 'Welder'").fetchone()
    before = vector_of(conn, "canonical_jobs", "id", job_id), \
        vector_of(conn, "user_preferences", "user_id", 2)
    with login(conn, roles["writer"]) as writer:
        for statement, args in [
            ("UPDATE canonical_jobs SET job_embedding = %s WHERE id = %s", [unit(1), job_id]),
            ("UPDATE user_preferences SET user_embedding = %s WHERE user_id = 2", [unit(1)]),
            ("UPDATE user_preferences SET user_role_embedding = %s WHERE user_id = 2",
             [unit(1)]),
            ("UPDATE canonical_jobs SET job_embedding_model = 'other' WHERE id = %s", [job_id]),
            # the occupation decides who meets whom (migration 0018): the write-back's too
            ("UPDATE canonical_jobs SET job_occupation = '4226.1' WHERE id = %s", [job_id]),
            ("UPDATE user_preferences SET user_occupation = '4226.1' WHERE user_id = 2", []),
            ("INSERT INTO user_preferences (user_id, job_roles, user_occupation)"
             " VALUES (9, ARRAY['Spam'], '4226.1')", []),
            ("UPDATE user_preferences SET embedding_xmin = '1' WHERE user_id = 2", []),
            ("INSERT INTO canonical_jobs (title, job_embedding, job_embedding_model,"
             " posted_date) VALUES ('Spam', %s, %s, now())", [unit(1), MODEL]),
            ("INSERT INTO user_preferences (user_id, job_roles, user_embedding, embedding_model)"
             " VALUES (9, ARRAY['Spam'], %s, %s)", [unit(1), MODEL]),
        ]:
            with pytest.raises(DENIED, match="vector"):
                writer.execute(statement, args)
        # the application's own columns, and rows without vectors, as before
        writer.execute("UPDATE canonical_jobs SET company = 'ACME' WHERE id = %s", [job_id])
        writer.execute("UPDATE user_preferences SET job_roles = ARRAY['Chef'] WHERE user_id = 2")
        writer.execute("INSERT INTO user_preferences (user_id, job_roles) VALUES (9, ARRAY['Cook'])")
        # setting a vector column to what it holds is no write
        writer.execute("UPDATE canonical_jobs SET job_embedding = job_embedding,"
                       " job_embedding_hash = job_embedding_hash WHERE id = %s", [job_id])
        writer.execute("DELETE FROM user_preferences WHERE user_id = 9")
    assert (vector_of(conn, "canonical_jobs", "id", job_id),
            vector_of(conn, "user_preferences", "user_id", 2)) == before
    assert ("user", 2) in conn.execute(
        "SELECT entity_type, entity_id FROM embedding_queue").fetchall()


def test_a_worker_cannot_write_a_vector_for_a_row_it_has_not_claimed(conn, roles, data):
    # complete_embeddings wrote any row whose current text hashes to the
    # hash it was given: a worker that once saw a seeker's text (or a job's
    # public posting) could overwrite that row's vector at any later time,
    # while the row was in nobody's lease or in another worker's.
    drain_with(conn, lambda text: unit(abs(hash(text)) % 1000))
    (user_hash,) = conn.execute("SELECT embedding_hash FROM user_preferences"
                                " WHERE user_id = 1").fetchone()
    before = vector_of(conn, "user_preferences", "user_id", 1)
    with login(conn, roles["worker"]) as hostile:
        written = hostile.execute(
            "SELECT complete_embeddings('evil', %s, ARRAY['user'], ARRAY[1::bigint],"
            " ARRAY[%s::uuid], ARRAY[%s::vector])", [MODEL, user_hash, unit(5)]).fetchone()[0]
        assert written == 0
        assert vector_of(conn, "user_preferences", "user_id", 1) == before
        # leased to another worker: not this one's to write either
        conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Welder', 'Fitter']"
                     " WHERE user_id = 1")
        (row,) = [r for r in conn.execute(
            "SELECT entity_type, entity_id, text_hash FROM claim_embedding_batch('honest', 10)")]
        assert hostile.execute(
            "SELECT complete_embeddings('evil', %s, ARRAY['user'], ARRAY[1::bigint],"
            " ARRAY[%s::uuid], ARRAY[%s::vector])", [MODEL, row[2], unit(5)]).fetchone()[0] == 0
        assert conn.execute("SELECT locked_by FROM embedding_queue WHERE entity_id = 1"
                            ).fetchone() == ("honest",)
    # the worker that holds the lease writes it
    assert conn.execute(
        "SELECT complete_embeddings('honest', %s, ARRAY['user'], ARRAY[1::bigint],"
        " ARRAY[%s::uuid], ARRAY[%s::vector])", [MODEL, row[2], unit(6)]).fetchone()[0] == 1


def test_a_worker_cannot_park_rows_where_no_claim_reaches(conn, roles, data):
    # enqueue_stale_embeddings took any priority: a worker that queued every
    # row at a negative one (no claim takes priority < 0) kept them out of
    # reach for good, the refresh and a model switch finding them already
    # queued (ON CONFLICT DO NOTHING): after a switch those seekers never got
    # a vector of the new model.
    drain_with(conn, lambda text: unit(abs(hash(text)) % 1000))
    with login(conn, roles["worker"]) as hostile:
        for args in [("1 microsecond", -1, None), (None, -32768, None), (None, 0, None),
                     (None, 1, 0)]:
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                hostile.execute("SELECT enqueue_stale_embeddings(%s, %s, %s)", args)
        # what the worker's refresh sends still works
        hostile.execute("SELECT enqueue_stale_embeddings('1 microsecond', 1, 10)")
    conn.execute("SELECT set_embedding_model('other-model', 'local', 384, NULL, true)")
    queued = conn.execute("SELECT entity_type, entity_id FROM embedding_queue ORDER BY 1, 2"
                          ).fetchall()
    claimed = conn.execute("SELECT entity_type, entity_id FROM claim_embedding_batch('w', 100)"
                           " UNION ALL"
                           " SELECT entity_type, entity_id FROM claim_embedding_backfill('b', 100)"
                           " ORDER BY 1, 2").fetchall()
    assert len(queued) == 4 and claimed == queued


def test_a_bot_cannot_switch_the_definer_functions_to_exhaustive_scans(conn, roles, data):
    # SET jobmatch.exact_search = on is the operator's ground truth (no
    # index: every seeker's vector, and for each candidate seeker every job
    # of the window, compared per call). Read by the definer functions from
    # the caller's session, it let the bot make every match_users call and
    # the alert feed (and each seeker reference in them) an exhaustive scan.
    drain_with(conn, lambda text: unit(1))
    conn.execute("UPDATE embedding_models SET exact_scan_max_rows = 0 WHERE is_active")
    conn.execute("SELECT * FROM jobmatch_build_vector_index('user', NULL, 0, 'hnsw', true)")
    conn.execute("ANALYZE user_preferences")
    (welder,) = conn.execute("SELECT id FROM canonical_jobs WHERE title = 'Welder'").fetchone()

    def index_scans():
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute("SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes"
                            " WHERE indexrelname = 'user_preferences_user_embedding_ann'"
                            ).fetchone()[0]

    def bot_call(exact: bool):
        with login(conn, roles["bot"]) as bot:
            if exact:
                bot.execute("SET jobmatch.exact_search = on")
            rows = bot.execute("SELECT user_id FROM match_users(%s, 10)", [welder]).fetchall()
            bot.execute("SELECT pg_stat_force_next_flush()")
        return rows

    import time

    def after(start):
        for _ in range(50):
            if index_scans() > start:
                return True
            time.sleep(0.1)
        return False

    start = index_scans()
    assert bot_call(False)
    assert after(start)  # the index serves the bot
    start = index_scans()
    assert bot_call(True)
    assert after(start)  # and still does with the bot's flag set
    # the owner's session still gets the exact search
    conn.execute("SET jobmatch.exact_search = on")
    start = index_scans()
    conn.execute("SELECT user_id FROM match_users(%s, 10)", [welder]).fetchall()
    conn.execute("SELECT pg_stat_force_next_flush()")
    assert not after(start)


KNOBS = ["enable_sort", "hnsw.ef_search", "hnsw.iterative_scan", "hnsw.max_scan_tuples",
         "ivfflat.probes", "ivfflat.max_probes", "ivfflat.iterative_scan", "search_path",
         "lock_timeout", "jobmatch.exact_search"]


def test_no_definer_function_leaves_a_setting_behind_in_the_callers_transaction(
        conn, roles, data):
    # A PgBouncer transaction, or a caller's own BEGIN: whatever a definer
    # function sets (the index knobs, enable_sort when it walks the index)
    # must not outlive the call, even before the transaction ends.
    drain_with(conn, lambda text: unit(1))
    conn.execute("UPDATE embedding_models SET exact_scan_max_rows = 0, hnsw_ef_search = 77,"
                 " ivfflat_probes = 3 WHERE is_active")
    conn.execute("ANALYZE")
    (welder,) = conn.execute("SELECT id FROM canonical_jobs WHERE title = 'Welder'").fetchone()
    for kind, calls in [("bot", ["SELECT * FROM match_jobs(1, 10)",
                                 f"SELECT * FROM match_users({welder}, 10)",
                                 "SELECT * FROM next_job_alerts(10)"]),
                        ("worker", ["SELECT * FROM claim_embedding_batch('w', 10)",
                                    "SELECT enqueue_stale_embeddings(NULL, 1, 10)"])]:
        with login(conn, roles[kind]) as caller:
            caller.execute("SELECT set_config('hnsw.ef_search', '40', false),"
                           " set_config('ivfflat.probes', '1', false)")
            # pgvector's settings exist once its library is loaded
            caller.execute("SELECT '[1]'::vector <=> '[1]'::vector")
            with caller.transaction():
                before = [caller.execute("SELECT current_setting(%s, true)", [k]).fetchone()
                          for k in KNOBS]
                for call in calls:
                    caller.execute(call).fetchall()
                    after = [caller.execute("SELECT current_setting(%s, true)", [k]).fetchone()
                             for k in KNOBS]
                    assert after == before, call


def test_a_worker_cannot_lease_the_whole_queue_for_ever(conn, roles, data):
    # claim_embedding_batch took any limit and any lease: one call leased
    # every queued row for a thousand years, out of every other worker's
    # reach (only an edit of each row would free it), and built every text
    # of the queue in one array.
    with login(conn, roles["worker"]) as hostile:
        for call in ["SELECT * FROM claim_embedding_batch('w', 10, '1000 years')",
                     "SELECT * FROM claim_embedding_backfill('w', 10, '3 days')",
                     "SELECT * FROM claim_embedding_batch('w', 2147483647)",
                     "SELECT * FROM claim_embedding_backfill('w', 50001)",
                     # a blue/green switch's target queue (28_target_queue.sql) alike
                     "SELECT * FROM claim_target_embeddings('w', 10, '1000 years')",
                     "SELECT * FROM claim_target_embeddings('w', 50001)"]:
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                hostile.execute(call)
        # what the worker and the Batch API backfill ask for
        assert len(hostile.execute("SELECT * FROM claim_embedding_batch('w', 2, '5 minutes')"
                                   ).fetchall()) == 2
        conn.execute("UPDATE embedding_queue SET priority = 1 WHERE locked_by IS NULL")
        assert len(hostile.execute("SELECT * FROM claim_embedding_backfill('b', 50000,"
                                   " '25 hours')").fetchall()) == 2
