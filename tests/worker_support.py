"""Shared by the worker tests: a FakeOpenAI, the test database switched to a
small OpenAI model, and `jobmatch worker` run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fake_openai import FakeOpenAI, fake_embedding

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-secret-7f3a9c"  # distinctive, so a leak into the logs is caught
DIMS = 256
MODEL = "text-embedding-3-small@256"
MODEL_FLAGS = ["--embedder", "openai", "--model", "text-embedding-3-small", "--dimensions", "256"]
# Fast defaults for tests; a test's own flags come later and win.
FAST = ["--poll-interval", "60", "--pause-seconds", "0.1", "--openai-timeout", "5",
        "--concurrency", "1"]


@pytest.fixture
def server():
    with FakeOpenAI(api_key=KEY, timeout_sleep=1.0) as s:
        yield s


@pytest.fixture
def oconn(conn):
    """The test database embedding with text-embedding-3-small at 256 dimensions."""
    conn.execute("SELECT set_embedding_model(%s, 'openai', 256, 0.3, true)", [MODEL])
    return conn


def fast_retries(conn, max_attempts: int = 2) -> None:
    """A tiny attempt cap and no backoff: a failing row is dead in one run."""
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = %s,"
                 " queue_backoff_base = '0 seconds'", [max_attempts])


def _env(dsn: str, server: FakeOpenAI, key: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMATCH_", "OPENAI_"))}
    env.update(DATABASE_URL=dsn, OPENAI_API_KEY=key, OPENAI_BASE_URL=server.base_url,
               PYTHONPATH=str(ROOT))
    return env


def _cmd(args) -> list[str]:
    return [sys.executable, "-m", "jobmatch.cli", "worker", *MODEL_FLAGS, *FAST, *map(str, args)]


def events(stderr: str) -> list[dict]:
    """The worker's log lines: every one a JSON object, none with the key."""
    assert KEY not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def messages(stderr: str) -> list[str]:
    return [e["msg"] for e in events(stderr)]


def run_worker(dsn, server, *args, key=KEY, timeout=60, env=None) -> subprocess.CompletedProcess:
    """`jobmatch worker ARGS` to completion (usually --once); `env`: more variables."""
    proc = subprocess.run(_cmd(args), env={**_env(dsn, server, key), **(env or {})}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    events(proc.stderr)
    return proc


class Running:
    """A long-running `jobmatch worker` subprocess."""

    def __init__(self, dsn, server, *args, key=KEY):
        self.proc = subprocess.Popen(_cmd(args), env=_env(dsn, server, key), cwd=ROOT,
                                     stderr=subprocess.PIPE, text=True)
        self.stderr = ""

    def signal(self, sig=signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout=15) -> int:
        _, self.stderr = self.proc.communicate(timeout=timeout)
        events(self.stderr)
        return self.proc.returncode

    def stop(self, timeout=15) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def workers():
    """Starts workers; whatever a test leaves running is killed."""
    started: list[Running] = []

    def start(dsn, server, *args, key=KEY) -> Running:
        started.append(Running(dsn, server, *args, key=key))
        return started[-1]

    yield start
    for w in started:
        w.kill()


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def leased(conn) -> int:
    return conn.execute("SELECT count(*) FROM embedding_queue WHERE locked_until > now()"
                        ).fetchone()[0]


def pending(conn) -> int:
    return conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]


def stored(conn) -> dict[tuple[str, int], tuple[str, str, str, np.ndarray | None]]:
    """(type, id) -> (current profile text, embedded text, model, vector)."""
    rows = conn.execute(
        "SELECT 'job', id, job_profile_text(j), job_embedding_text, job_embedding_model,"
        " job_embedding FROM canonical_jobs AS j"
        " UNION ALL SELECT 'user', user_id, user_profile_text(u), embedding_text, embedding_model,"
        " user_embedding FROM user_preferences AS u").fetchall()
    return {(t, i): (cur, text, model, None if v is None else v.to_numpy())
            for t, i, cur, text, model, v in rows}


def stored_roles(conn) -> dict[tuple[str, int], tuple[str | None, np.ndarray | None]]:
    """(type, id) -> (current role text, role vector)."""
    rows = conn.execute(
        "SELECT 'job', id, jobmatch_job_role_text(j), job_role_embedding FROM canonical_jobs AS j"
        " UNION ALL SELECT 'user', user_id, jobmatch_user_role_text(u), user_role_embedding"
        " FROM user_preferences AS u").fetchall()
    return {(t, i): (text, None if v is None else v.to_numpy()) for t, i, text, v in rows}


def assert_embedded(conn, keys=None) -> None:
    """Each row (or `keys`) has the vectors of its current texts, from the
    model: the profile text's, and its role text's when it has one."""
    rows, roles = stored(conn), stored_roles(conn)
    for key in keys if keys is not None else rows:
        current, text, model, vec = rows[key]
        assert vec is not None, f"{key} has no vector"
        assert (text, model) == (current, MODEL), key
        np.testing.assert_allclose(vec, fake_embedding(current, DIMS), atol=1e-6)
        role_text, role_vec = roles[key]
        if role_text is None:
            assert role_vec is None, key
        else:
            assert role_vec is not None, f"{key} has no role vector"
            np.testing.assert_allclose(role_vec, fake_embedding(role_text, DIMS), atol=1e-6)


def assert_no_bad_vectors(conn) -> None:
    """Nothing zero-filled, nothing of the wrong size, ever."""
    bad = conn.execute(
        "SELECT count(*) FROM (SELECT job_embedding AS v FROM canonical_jobs"
        " UNION ALL SELECT user_embedding FROM user_preferences) AS x"
        " WHERE v IS NOT NULL AND (vector_norm(v) = 0 OR vector_dims(v) <> %s)", [DIMS]
    ).fetchone()[0]
    assert bad == 0
