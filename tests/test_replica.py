"""match_jobs on a streaming-replication hot standby: a primary (initdb) and a
standby (pg_basebackup -R) from the embedded binaries, the worker filling
vectors on the primary, and the standby answering every seeker exactly as the
primary does, as the bot's login role, without writing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import LOCAL_MODEL
from support.data import job, user
from jobmatch import db as jm_db
from jobmatch import standby as sb
from jobmatch.migrate import migrate

pytestmark = pytest.mark.slow  # a hot standby of its own per test

ROOT = Path(__file__).resolve().parent.parent
BOT = "replica_test_bot"  # a login role in the bot's group role


@pytest.fixture
def primary(tmp_path):
    """A fresh primary (wal_level replica) with a migrated `jobmatch`
    database; every server the test started is stopped, even on failure."""
    servers: list[sb.LocalServer] = []
    try:
        servers.append(sb.init_primary(tmp_path / "primary"))
        with psycopg.connect(servers[0].url(), autocommit=True) as c:
            c.execute("CREATE DATABASE jobmatch")
        migrate(servers[0].url("jobmatch"), LOCAL_MODEL)
        yield servers
    finally:
        for server in reversed(servers):
            try:
                server.stop("fast")
            except Exception as exc:  # noqa: BLE001 - stop the others all the same
                print(f"stopping {server.pgdata}: {exc}\n{server.log()[-2000:]}", file=sys.stderr)


def start_standby(servers, tmp_path) -> sb.LocalServer:
    servers.append(sb.init_standby(servers[0].url("jobmatch"), tmp_path / "standby"))
    return servers[-1]


def run_local_worker(url: str) -> subprocess.CompletedProcess:
    """`jobmatch worker --once` with the bundled local model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMATCH_", "OPENAI_"))}
    env.update(DATABASE_URL=url, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "jobmatch.cli", "worker", "--embedder", "local",
                           "--once", "--concurrency", "1"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)


def as_bot(server: sb.LocalServer) -> psycopg.Connection:
    return jm_db.connect(server.url("jobmatch", user=BOT), autocommit=True)


def answers(c, seekers) -> dict[int, list[tuple]]:
    return {s: c.execute("SELECT * FROM match_jobs(%s, 10)", [s]).fetchall() for s in seekers}


def test_a_hot_standby_answers_match_jobs_as_the_primary_does(primary, tmp_path):
    servers = primary
    p = jm_db.connect(servers[0].url("jobmatch"), autocommit=True)
    with p:
        for i, (title, skills, city) in enumerate([
                ("Data Scientist", ["Python", "SQL"], "Lagos"),
                ("Machine Learning Engineer", ["Python", "PyTorch"], "Abuja"),
                ("Registered Nurse", ["Patient care"], "Lagos"),
                ("Welder", ["TIG", "MIG"], "Port Harcourt"),
                ("Accountant", ["IFRS", "Excel"], "Lagos"),
                ("Backend Developer", ["Python", "PostgreSQL"], "Ibadan")]):
            job(p, title=title, ai_required_skills=skills, ai_city=city, company=f"Co {i}")
        user(p, 1, job_roles=["Data Scientist"], technical_skills=["Python", "SQL"])
        user(p, 2, job_roles=["Nurse"], technical_skills=["Patient care"],
             preferred_locations=["Lagos"])
        user(p, 3, job_roles=["Welder"], technical_skills=["TIG"])
        proc = run_local_worker(servers[0].url("jobmatch"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert p.execute("SELECT count(*) FROM embedding_queue").fetchone()[0] == 0
        # brand-new seekers, no vector yet: the keyword path
        user(p, 4, job_roles=["Accountant"], technical_skills=["Excel"])
        user(p, 5, job_roles=["Python Developer"])
        p.execute(f"DO $$ BEGIN CREATE ROLE {BOT} LOGIN; EXCEPTION WHEN duplicate_object"
                  " THEN NULL; END $$")
        p.execute(f"GRANT jobmatch_bot TO {BOT}")
        seekers = [r[0] for r in p.execute("SELECT user_id FROM user_preferences ORDER BY 1")]

        standby = start_standby(servers, tmp_path)
        with jm_db.connect(standby.url("jobmatch"), autocommit=True) as s, \
                as_bot(servers[0]) as pbot, as_bot(standby) as sbot:
            assert s.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            assert s.execute("SHOW transaction_read_only").fetchone() == ("on",)
            for walk_the_index in (False, True):
                if walk_the_index:  # the exact-scan threshold passed: enable_sort off, index walk
                    p.execute("UPDATE embedding_models SET exact_scan_max_rows = 0"
                              " WHERE is_active")
                sb.wait_for_replay(p, s)
                on_primary = answers(pbot, seekers)
                methods = {row[-1] for rows in on_primary.values() for row in rows}
                assert methods == {"semantic", "keyword"}, on_primary
                assert all(on_primary.values()), on_primary  # every seeker gets jobs
                assert answers(sbot, seekers) == on_primary  # same rows, same order
                assert answers(s, seekers) == on_primary  # as the owner too
            # the bot's rights replicate: no table reads there either
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                sbot.execute("SELECT * FROM user_preferences")

        # Nothing in match_jobs writes: in a read-only transaction on the
        # primary no transaction id is ever assigned, no temp schema appears.
        with as_bot(servers[0]) as ro:
            ro.execute("SET default_transaction_read_only = on")
            with ro.transaction():
                for seeker in seekers:
                    ro.execute("SELECT * FROM match_jobs(%s, 10)", [seeker]).fetchall()
                assert ro.execute("SELECT pg_current_xact_id_if_assigned()").fetchone() == (None,)
            assert ro.execute("SELECT pg_my_temp_schema()::oid").fetchone() == (0,)


def jobmatch(*args, env=None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JOBMATCH_")},
           "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "jobmatch.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_db_up_standby_of_starts_a_local_standby(primary, tmp_path):
    servers = primary
    url = servers[0].url("jobmatch")
    with jm_db.connect(url, autocommit=True) as p:
        user(p, 1, job_roles=["Cook"])
        job(p, title="Cook")
    pgdata = tmp_path / "standby"
    up = jobmatch("db", "up", "--standby-of", url, "--standby-pgdata", str(pgdata))
    if (pgdata / "PG_VERSION").exists():  # stopped by the fixture, whatever happens next
        servers.append(sb.LocalServer(pgdata.resolve(), sb.port_of(pgdata)))
    assert up.returncode == 0, up.stderr
    standby_url = up.stdout.strip()
    assert jobmatch("db", "url", "--standby", env={"JOBMATCH_STANDBY_PGDATA": str(pgdata)}
                    ).stdout.strip() == standby_url
    with jm_db.connect(url, autocommit=True) as p, \
            jm_db.connect(standby_url, autocommit=True) as s:
        assert s.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        sb.wait_for_replay(p, s)
    match = jobmatch("match", "1", "--json", env={"DATABASE_URL": standby_url})
    assert match.returncode == 0, match.stderr
    assert '"match_method": "keyword"' in match.stdout and '"title": "Cook"' in match.stdout
    down = jobmatch("db", "down", "--standby", "--standby-pgdata", str(pgdata))
    assert down.stdout.strip() == "stopped"
    assert not (pgdata / "postmaster.pid").exists()
