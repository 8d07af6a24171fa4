"""`jobmatch worker` as a real subprocess against a FakeOpenAI, for the
worker tests and the fault and load benchmarks: the OpenAI model they use
(text-embedding-3-small at 256 dimensions), its environment and command,
two runners (stderr piped, for tests; stderr to a log file, for long runs),
its JSON log lines, and the checks of what it stored.

The FakeOpenAI and fake_embedding are support/fake_openai.py's, so a vector
can be checked against the text it must have been made from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from .fake_openai import fake_embedding

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-secret-7f3a9c"  # distinctive, so a leak into the logs is caught
DIMS = 256
MODEL = "text-embedding-3-small@256"
MODEL_SPEC = (MODEL, "openai", DIMS)
MODEL_FLAGS = ["--embedder", "openai", "--model", "text-embedding-3-small", "--dimensions", str(DIMS)]
# Fast defaults for tests; a test's own flags come later and win.
FAST = ["--poll-interval", "60", "--pause-seconds", "0.1", "--openai-timeout", "5",
        "--concurrency", "1"]


def fast_retries(conn, max_attempts: int = 2) -> None:
    """A tiny attempt cap and no backoff: a failing row is dead in one run."""
    conn.execute("UPDATE jobmatch_settings SET queue_max_attempts = %s,"
                 " queue_backoff_base = '0 seconds'", [max_attempts])


def worker_env(dsn: str, base_url: str, key: str | None = KEY) -> dict:
    """This environment without any JOBMATCH_/OPENAI_ variable, then the
    database, the provider's URL and (unless None) the API key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMATCH_", "OPENAI_"))}
    env.update(DATABASE_URL=dsn, OPENAI_BASE_URL=base_url, PYTHONPATH=str(ROOT))
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return env


def worker_cmd(*args, model_flags=MODEL_FLAGS, log_level: str | None = None) -> list[str]:
    """`jobmatch [--log-level L] worker MODEL_FLAGS ARGS` in this interpreter."""
    top = ["--log-level", log_level] if log_level else []
    return [sys.executable, "-m", "jobmatch.cli", *top, "worker", *model_flags, *map(str, args)]


def _cmd(args) -> list[str]:
    return worker_cmd(*FAST, *args)


def parse_events(text: str, strict: bool = True) -> list[dict]:
    """The JSON log lines in `text`; strict: every non-blank line must be one."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            out.append(obj)
        elif strict:
            raise AssertionError(f"not a JSON log line: {line[:300]!r}")
    return out


def events(stderr: str) -> list[dict]:
    """The worker's log lines: every one a JSON object, none with the key."""
    assert KEY not in stderr
    return parse_events(stderr)


def messages(stderr: str) -> list[str]:
    return [e["msg"] for e in events(stderr)]


def run_worker(dsn, server, *args, key=KEY, timeout=60, env=None) -> subprocess.CompletedProcess:
    """`jobmatch worker ARGS` to completion (usually --once); `env`: more variables."""
    proc = subprocess.run(_cmd(args), env={**worker_env(dsn, server.base_url, key), **(env or {})}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    events(proc.stderr)
    return proc


class Running:
    """A long-running `jobmatch worker` subprocess, stderr piped (a test's
    worker says little)."""

    def __init__(self, dsn, server, *args, key=KEY):
        self.proc = subprocess.Popen(_cmd(args), env=worker_env(dsn, server.base_url, key), cwd=ROOT,
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


class WorkerProc:
    """`jobmatch [--log-level L] worker ARGS` with stdout and stderr appended
    to `log_path` (a file, not a pipe: a chatty worker never blocks on it)."""

    def __init__(self, dsn: str, base_url: str, args=(), *, log_path: Path, key: str | None = KEY,
                 log_level: str | None = None, model_flags=MODEL_FLAGS):
        self.log_path = Path(log_path)
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")
        self.cmd = worker_cmd(*args, model_flags=model_flags, log_level=log_level)
        self.proc = subprocess.Popen(self.cmd, env=worker_env(dsn, base_url, key), cwd=ROOT,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        return self.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            self._log.close()
        return code

    def text(self) -> str:
        """What this process wrote (the log file may hold earlier runs too)."""
        with open(self.log_path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", errors="replace")

    def events(self, strict: bool = True) -> list[dict]:
        """The JSON log lines; strict: every line must be one."""
        return parse_events(self.text(), strict)


def leased(conn) -> int:
    return conn.execute("SELECT count(*) FROM embedding_queue WHERE locked_until > now()"
                        ).fetchone()[0]


def pending(conn) -> int:
    return conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]


def stored(conn) -> dict[tuple[str, int], tuple[str, str, str, np.ndarray | None]]:
    """(type, id) -> (current profile text, embedded text, model, vector)."""
    rows = conn.execute(
        "SELECT 'job', id, jobmatch_job_profile_text(j), job_embedding_text, job_embedding_model,"
        " job_embedding FROM canonical_jobs AS j"
        " UNION ALL SELECT 'user', user_id, jobmatch_user_profile_text(u), embedding_text,"
        " embedding_model, user_embedding FROM user_preferences AS u").fetchall()
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
