"""`jobmatch db up | url | down` manage the embedded PostgreSQL when no
DATABASE_URL is set."""

import os
import subprocess
import sys

import psycopg
import pytest


def jobmatch(pgdata, *args):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["JOBMATCH_PGDATA"] = str(pgdata)
    return subprocess.run([sys.executable, "-m", "jobmatch.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_db_up_url_down(tmp_path):
    pgdata = tmp_path / "pgdata"
    up = jobmatch(pgdata, "db", "up")
    assert up.returncode == 0, up.stderr
    url = up.stdout.strip()
    assert url.startswith("postgresql://") and "/jobmatch" in url
    assert jobmatch(pgdata, "db", "url").stdout.strip() == url
    with psycopg.connect(url) as conn:  # the server outlives the command that started it
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert jobmatch(pgdata, "db", "down").stdout.strip() == "stopped"
    assert jobmatch(pgdata, "db", "down").stdout.strip() == "not running"


def test_db_url_prefers_database_url(tmp_path):
    env = {**os.environ, "DATABASE_URL": "postgresql://someone@db.example/app",
           "JOBMATCH_PGDATA": str(tmp_path / "unused")}
    out = subprocess.run([sys.executable, "-m", "jobmatch.cli", "db", "url"], env=env,
                         capture_output=True, text=True, timeout=60).stdout.strip()
    assert out == "postgresql://someone@db.example/app"
    assert not (tmp_path / "unused").exists()
