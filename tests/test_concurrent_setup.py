"""Two deploys at once: `jobmatch migrate` run concurrently on one database,
and `jobmatch db up` run concurrently on a new data directory, all succeed."""

import os
import subprocess
import sys
from pathlib import Path

from test_migrations import fingerprint
import pytest

pytestmark = pytest.mark.slow  # eight migrations and two servers started at once

ROOT = Path(__file__).resolve().parents[1]


def jobmatch(*args, **env) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("JOBMATCH_", "OPENAI_")) and k != "DATABASE_URL"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.Popen([sys.executable, "-m", "jobmatch.cli", *args], env=environ, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(procs: list[subprocess.Popen], timeout: float = 180) -> list[tuple[int, str, str]]:
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, out, err))
    return results


def test_migrate_run_eight_times_at_once_succeeds(empty_dsn, dsn):
    procs = [jobmatch("migrate", "--embedder", "local", DATABASE_URL=empty_dsn)
             for _ in range(8)]
    results = finish(procs)
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    for _, _, err in results:  # at most a note that it waited for another run
        assert all("waiting for it" in line for line in err.splitlines()), err
    applied = [out.splitlines()[0] for _, out, _ in results]
    assert sum(line != "migrations applied: none (up to date)" for line in applied) == 1
    assert fingerprint(empty_dsn) == fingerprint(dsn)  # dsn: the session's fresh template clone


def test_db_up_twice_at_once_on_a_new_data_directory(tmp_path):
    pgdata = tmp_path / "pgdata"
    try:
        results = finish([jobmatch("db", "up", JOBMATCH_PGDATA=str(pgdata)) for _ in range(2)])
        assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
        urls = {out.strip() for _, out, _ in results}
        assert len(urls) == 1 and urls.pop().startswith("postgresql://")
        assert all("Traceback" not in err for _, _, err in results)
    finally:
        down = finish([jobmatch("db", "down", JOBMATCH_PGDATA=str(pgdata))])
    assert down[0][:2] == (0, "stopped\n"), down
