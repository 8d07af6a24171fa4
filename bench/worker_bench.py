"""Worker, write-path, freshness and memory benchmarks (GitHub issue 4), one command:

    python -m bench.worker_bench [--rows N] [--quick] [--profile] [--out PATH]

Runs on a dedicated embedded PostgreSQL 18 + pgvector (its own data directory,
JOBMATCH_BENCH_WORKER_PGDATA, default /var/tmp/jobmatch-bench-worker/pgdata as
root; database jobmatch_bench_worker, dropped and re-created each run; the
server is stopped at the end if this run started it) or on DATABASE_URL
(refused if it holds jobs or seekers the benchmark did not load, unless
--reset). The schema comes from the project's own `migrate`, switched to
text-embedding-3-small (1536-d). The provider is support/fake_openai.FakeOpenAI
(deterministic vectors, `latency` seconds per request, memoised so the fake
spends no CPU on a text twice) in this process; `jobmatch worker` runs as a
subprocess with DATABASE_URL / OPENAI_API_KEY / OPENAI_BASE_URL pointing at it.

Sections, in this order:
  worker      vectors written per second: the worker's own `drained` log line
              (vectors / seconds of draining, start-up excluded), for
              - the plan's loop (generate_missing_job_embeddings: one request per
                row, a 0.1 s sleep, one UPDATE and commit per row), capped at
                --plan-rows rows, zero-latency and 200 ms providers;
              - `jobmatch worker --once` with an empty queue (start-up cost, idle RSS);
              - `jobmatch worker --once` with the 200 ms provider at several
                concurrencies and request sizes (batch size = max(400, concurrency
                x request size), so a batch keeps every request slot busy), each
                --sweep-repeats times, interleaved;
              - `jobmatch worker --once` with the zero-latency provider: the
                deployment defaults (three times), a larger batch, two workers at
                once, and the defaults with an ivfflat index on the vectors.
              Each run starts from a fresh table (TRUNCATE, INSERT ... SELECT of
              the first rows of a staging table of generated jobs, ANALYZE,
              CHECKPOINT) and records CPU seconds of the worker (wait4), of the
              whole database server (postmaster + children, from /proc) and of
              this process (the fake provider), and the worker's peak RSS (VmHWM).
  profile     (--profile) py-spy on one more zero-latency run: the main thread's
              wall time by phase and the busiest functions.
  memory      the worker's peak RSS per run; table, TOAST and index sizes.
  freshness   a long-running `jobmatch worker` (LISTEN/NOTIFY, --poll-interval 5):
              time from a seeker's preference UPDATE until the vector of the new
              text is visible, and until match_jobs has answered with it.
  write_path  bulk INSERT ... SELECT and COPY of --bulk-rows jobs with and
              without the triggers (ALTER TABLE ... DISABLE TRIGGER USER),
              alternating, median of --repeats; single-row UPDATEs (autocommit)
              that change / do not change the profile text, triggers on and off.

Timings on a shared machine are noisy: every wall time comes with CPU seconds
and the load average, repeated configurations report their median, and
"cpu est" is what one worker could do on an otherwise idle machine (1 / the sum
of worker, database and provider CPU per vector). Results: a table on stdout,
JSON and CSV in bench/results/ (bench/WORKER_RESULTS.md discusses a full run).
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import hashlib
import json
import logging
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from jobmatch import db as jm_db
from jobmatch.demo_data import JOB_COLUMNS, SEEKER_COLUMNS, generate_jobs, generate_seekers
from jobmatch.migrate import apply_functions, migrate
from support import fake_openai
from support.common import loadavg, log, percentile
from support.fake_openai import FakeOpenAI
from support.server import configure_embedded
from support.worker import parse_events, worker_env
from support.worker import worker_cmd as support_worker_cmd

REPO = Path(__file__).resolve().parents[1]

MODEL, DIMS = "text-embedding-3-small", 1536
MODEL_FLAGS = ["--embedder", "openai", "--model", MODEL, "--dimensions", str(DIMS)]
API_KEY = "sk-bench-worker"
DBNAME = "jobmatch_bench_worker"
SEED = 7
TCK = os.sysconf("SC_CLK_TCK")
# The embedded bench server: PostgreSQL's defaults except these (a 2-core box;
# jit off as for OLTP; room for bulk loads without checkpoint storms).
SERVER_SETTINGS = {"shared_buffers": "512MB", "jit": "off", "max_wal_size": "4GB",
                   "checkpoint_timeout": "30min"}
REPORTED_SETTINGS = ["shared_buffers", "jit", "max_wal_size", "checkpoint_timeout",
                     "synchronous_commit", "fsync", "wal_level", "work_mem"]
ZERO_LATENCY_GOAL = 2000.0  # vectors/s
TRIGGER_RATIO_GOAL = 1.5
FRESHNESS_P50_GOAL = 1.0  # s


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), linear interpolation; NaN if there are none."""
    p = percentile(values, q * 100)
    return float("nan") if p is None else p


def r(x: float | None, n: int = 3):
    return None if x is None else round(float(x), n)


# ------------------------------------------------------------------ CPU and memory

def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def proc_cpu(pid: int) -> float | None:
    """CPU seconds of a single-threaded process (a PostgreSQL backend):
    /proc/PID/schedstat (nanoseconds), else utime + stime (clock ticks)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        f = _stat(pid)
        return None if f is None else (int(f[11]) + int(f[12])) / TCK


def rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) in MB: the resident set now and its peak so far."""
    got = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    got[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        return None
    return (got["VmRSS"], got["VmHWM"]) if len(got) == 2 else None


class ServerCpu:
    """CPU seconds of a PostgreSQL server on this host: the postmaster, its live
    children and (cutime/cstime) every child that already exited, e.g. the
    backends of a worker that disconnected. None when the server is not local."""

    def __init__(self, conn: psycopg.Connection):
        self.pid = None
        f = _stat(conn.info.backend_pid)
        if f is not None:
            ppid = int(f[1])
            try:
                comm = Path(f"/proc/{ppid}/comm").read_text().strip()
            except OSError:
                comm = ""
            if comm.startswith("postgres") or comm.startswith("postmaster"):
                self.pid = ppid

    def total(self) -> float | None:
        if self.pid is None:
            return None
        f = _stat(self.pid)
        if f is None:
            return None
        total = sum(int(x) for x in f[11:15]) / TCK
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                c = _stat(int(entry.name))
                if c is not None and int(c[1]) == self.pid:
                    total += (int(c[11]) + int(c[12])) / TCK
        return total


# ------------------------------------------------------------------ the fake provider

class _EmbeddingCache:
    """fake_embedding memoised by (text, dims): the same deterministic vectors,
    without the fake server spending CPU (a numpy sum per word) that a real
    provider spends on its own machines. Installed for the benchmark only."""

    def __init__(self):
        self.cache: dict[tuple[str, int], np.ndarray] = {}
        self.orig = fake_openai.fake_embedding
        self.lock = threading.Lock()

    def __call__(self, text: str, dims: int) -> np.ndarray:
        key = (text, dims)
        vec = self.cache.get(key)
        if vec is None:
            vec = self.orig(text, dims)
            vec.flags.writeable = False
            with self.lock:
                self.cache[key] = vec
        return vec

    def warm(self, texts) -> None:
        for t in texts:
            self(t, DIMS)

    @contextmanager
    def installed(self):
        fake_openai.fake_embedding = self
        try:
            yield self
        finally:
            fake_openai.fake_embedding = self.orig


# ------------------------------------------------------------------ the database

class BenchDb:
    def __init__(self, args):
        self.args = args
        self.started_server = False
        self.embedded_pgdata: Path | None = None
        if os.environ.get("DATABASE_URL"):
            self.url = os.environ["DATABASE_URL"]
            self.where = "DATABASE_URL"
        else:
            self.embedded_pgdata = self._pgdata()
            os.environ["JOBMATCH_PGDATA"] = str(self.embedded_pgdata)
            self.embedded_pgdata.parent.mkdir(parents=True, exist_ok=True)
            self.started_server = not jm_db.embedded_running()
            self._configure()
            self.url = jm_db.embedded_url(DBNAME)
            self.where = f"embedded PostgreSQL in {self.embedded_pgdata}, database {DBNAME}"

    @staticmethod
    def _pgdata() -> Path:
        env = os.environ.get("JOBMATCH_BENCH_WORKER_PGDATA")
        if env:
            return Path(env).expanduser().resolve()
        # As root the server runs as an unprivileged user that cannot enter /root.
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            return Path("/var/tmp/jobmatch-bench-worker/pgdata")
        return Path("~/.cache/jobmatch-bench-worker/pgdata").expanduser()

    def _configure(self) -> None:
        configure_embedded(SERVER_SETTINGS, log)

    def connect(self, **kw) -> psycopg.Connection:
        return jm_db.connect(self.url, autocommit=True, **kw)

    def prepare(self) -> None:
        """Schema and model; refuses to wipe data it did not load."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            has_tables = conn.execute(
                "SELECT to_regclass('canonical_jobs') IS NOT NULL"
                " AND to_regclass('user_preferences') IS NOT NULL").fetchone()[0]
            ours = conn.execute("SELECT to_regclass('bench_job_src') IS NOT NULL").fetchone()[0]
            if has_tables and not ours and self.embedded_pgdata is None and not self.args.reset:
                n = conn.execute("SELECT (SELECT count(*) FROM canonical_jobs)"
                                 " + (SELECT count(*) FROM user_preferences)").fetchone()[0]
                if n:
                    raise SystemExit(f"refusing to benchmark on DATABASE_URL: it holds {n} jobs/"
                                     "seekers the benchmark did not load (they would be deleted);"
                                     " pass --reset to allow it")
        if self.embedded_pgdata is not None:  # our own database: start from nothing
            with psycopg.connect(jm_db.embedded_url("postgres"), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(DBNAME)))
            self.url = jm_db.embedded_url(DBNAME)
        migrate(self.url, (MODEL, "openai", DIMS), switch=True, roles=None)
        with self.connect() as conn:
            # an interrupted run may have left its index behind
            conn.execute("DROP INDEX IF EXISTS canonical_jobs_job_embedding_ivfflat")
            conn.execute("TRUNCATE canonical_jobs, user_preferences RESTART IDENTITY")
            conn.execute("TRUNCATE embedding_queue, embedding_dead_letter")
            # Fake vectors of related texts are less similar than real ones:
            # a lower threshold keeps match_jobs semantic (as the tests do).
            conn.execute("UPDATE embedding_models SET similarity_threshold = 0.3 WHERE is_active")

    def info(self) -> dict:
        with self.connect() as conn:
            settings = dict(conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                [REPORTED_SETTINGS]).fetchall())
            version = conn.execute("SHOW server_version").fetchone()[0]
            vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                                  ).fetchone()[0]
        return {"where": self.where, "server_version": version, "pgvector": vector,
                "settings": settings}

    def close(self) -> None:
        if self.embedded_pgdata is not None and self.started_server and not self.args.keep_server:
            log("stopping the bench server (it was not running before; --keep-server keeps it)")
            jm_db.stop_embedded()


def checkpoint(conn) -> None:
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        pass


def ensure_source(conn, n: int) -> float:
    """bench_job_src: n generated jobs (demo_data, seed 7), numbered 0..n-1, all
    posted within the match window (older jobs are never embedded, so they would
    not measure the worker); reused while the count and the date match."""
    today = dt.date.today().isoformat() + "/window"
    conn.execute("CREATE TABLE IF NOT EXISTS bench_worker_info (key text PRIMARY KEY, value text)")
    info = dict(conn.execute("SELECT key, value FROM bench_worker_info").fetchall())
    if int(info.get("src_rows", 0)) >= n and info.get("src_date") == today and \
            conn.execute("SELECT to_regclass('bench_job_src') IS NOT NULL").fetchone()[0]:
        return 0.0
    t0 = time.perf_counter()
    log(f"generating {n} jobs (jobmatch.demo_data.generate_jobs, seed {SEED})")
    jobs = generate_jobs(n, seed=SEED)
    conn.execute("DROP TABLE IF EXISTS bench_job_src")
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE bench_job_src AS SELECT 0::int AS n, {}"
                         " FROM canonical_jobs WITH NO DATA").format(
        sql.SQL(", ").join(map(sql.Identifier, JOB_COLUMNS))))
    cols = sql.SQL(", ").join(map(sql.Identifier, ("n", *JOB_COLUMNS)))
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY bench_job_src ({}) FROM STDIN").format(cols)) as cp:
            for i, job in enumerate(jobs):
                cp.write_row([i, *(job[c] for c in JOB_COLUMNS)])
    conn.execute("UPDATE bench_job_src SET posted_date = now() - (n % 55) * interval '1 day'")
    conn.execute("ALTER TABLE bench_job_src ADD PRIMARY KEY (n)")
    conn.execute("ANALYZE bench_job_src")
    conn.execute("INSERT INTO bench_worker_info VALUES ('src_rows', %s), ('src_date', %s)"
                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value", [str(n), today])
    return time.perf_counter() - t0


JOB_COLS_SQL = sql.SQL(", ").join(map(sql.Identifier, JOB_COLUMNS))


def load_jobs(conn, n: int) -> int:
    """A fresh canonical_jobs with the first n staged jobs; the triggers queue them.
    Returns the number of queued rows."""
    conn.execute("TRUNCATE canonical_jobs, user_preferences RESTART IDENTITY")
    conn.execute("TRUNCATE embedding_queue, embedding_dead_letter")
    conn.execute(sql.SQL("INSERT INTO canonical_jobs ({c}) SELECT {c} FROM bench_job_src"
                         " WHERE n < %s ORDER BY n").format(c=JOB_COLS_SQL), [n])
    conn.execute("ANALYZE canonical_jobs")
    conn.execute("ANALYZE embedding_queue")
    checkpoint(conn)
    return conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]


def job_texts(conn, n: int | None = None) -> list[str]:
    q = "SELECT job_profile_text(j) FROM canonical_jobs AS j ORDER BY id"
    return [t for (t,) in conn.execute(q + (" LIMIT %s" if n else ""), [n] if n else []).fetchall()]


def embedded_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding_model = %s"
                        " AND job_embedding_hash = jobmatch_text_hash(job_profile_text(canonical_jobs))",
                        [MODEL]).fetchone()[0]


def table_sizes(conn) -> dict:
    out = {}
    for table in ("canonical_jobs", "user_preferences", "embedding_queue"):
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                            ).fetchone()[0]
        heap, toast, total = conn.execute(
            "SELECT pg_relation_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),"
            " pg_total_relation_size(c.oid) FROM pg_class c WHERE c.oid = %s::regclass",
            [table]).fetchone()
        indexes = dict(conn.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
            " WHERE indrelid = %s::regclass ORDER BY 1", [table]).fetchall())
        dead = conn.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = %s::regclass",
                            [table]).fetchone()
        out[table] = {"rows": rows, "dead_row_versions": dead and dead[0],
                      "heap_bytes": heap, "toast_bytes": toast,
                      "indexes_bytes": indexes, "total_bytes": total,
                      "bytes_per_row": round(total / rows) if rows else None}
    return out


# ------------------------------------------------------------------ running the worker

def provider_env(url: str, provider: FakeOpenAI) -> dict:
    return worker_env(url, provider.base_url, API_KEY)


def worker_cmd(*flags) -> list[str]:
    return support_worker_cmd(*flags, model_flags=MODEL_FLAGS)


class Proc:
    """A worker subprocess: CPU from wait4(); peak RSS from /proc/PID/status
    VmHWM, sampled every 50 ms until it exits (wait4's ru_maxrss is useless
    here: Linux carries the parent's high-water mark across fork + exec)."""

    def __init__(self, cmd, env, cwd=REPO, stdin_devnull=True):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                                     stderr=self.err, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.rusage = None
        self.returncode = None
        self.rss_samples: list[float] = []
        self.hwm = 0.0

    def poll(self) -> bool:
        """True once exited (reaped with its rusage)."""
        if self.returncode is not None:
            return True
        pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            got = rss_mb(self.pid)
            if got is not None:
                self.rss_samples.append(got[0])
                self.hwm = max(self.hwm, got[1])
            return False
        self.rusage, self.returncode = ru, os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode  # Popen must not wait for it again
        return True

    def wait(self, timeout: float, interval: float = 0.05) -> int:
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                self.proc.kill()
                while not self.poll():
                    time.sleep(0.05)
                raise RuntimeError(f"worker timed out after {timeout}s:\n{self.stderr()[-3000:]}")
            time.sleep(interval)
        return self.returncode

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def usage(self) -> dict:
        ru = self.rusage
        return {"worker_cpu_user_s": r(ru.ru_utime), "worker_cpu_sys_s": r(ru.ru_stime),
                "worker_peak_rss_mb": r(self.hwm, 1),
                "worker_rss_sampled_max_mb": r(max(self.rss_samples), 1) if self.rss_samples else None}


def run_workers(bdb: BenchDb, conn, provider: FakeOpenAI, flags: list, *, workers: int = 1,
                queued: int, timeout: float, startup_cpu_s: float | None = None) -> dict:
    """`jobmatch worker --once FLAGS` (in `workers` processes at once) until the queue is drained."""
    meter = ServerCpu(conn)
    env = provider_env(bdb.url, provider)
    la0, db0, me0 = loadavg(), meter.total(), time.process_time()
    t0 = time.perf_counter()
    procs = [Proc(worker_cmd("--once", *flags), env) for _ in range(workers)]
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(max(1.0, deadline - time.monotonic()))
    wall = time.perf_counter() - t0
    db1, me1 = meter.total(), time.process_time()
    out: dict = {"flags": " ".join(map(str, flags)), "workers": workers, "rows_queued": queued}
    drained, stopped = [], []
    for p in procs:
        text = p.stderr()
        if p.returncode != 0:
            raise RuntimeError(f"worker exited {p.returncode}:\n{text[-3000:]}")
        ev = parse_events(text, strict=False)
        drained += [e for e in ev if e.get("msg") == "drained"]
        stopped += [e for e in ev if e.get("msg") == "worker stopped"]
    written = sum(e["written"] for e in stopped)
    drain_s = max((e["seconds"] for e in drained), default=None)
    out.update(
        rows_written=written, rows_claimed=sum(e["claimed"] for e in stopped),
        failed=sum(e["failed"] for e in stopped), requests=sum(e["requests"] for e in stopped),
        rows_embedded_in_db=embedded_count(conn),
        queue_left=conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0],
        drain_s=r(drain_s), wall_s=r(wall),
        vectors_per_s=r(written / drain_s, 1) if drain_s else None,
        vectors_per_s_wall=r(written / wall, 1),
        db_cpu_s=r(db1 - db0) if db0 is not None and db1 is not None else None,
        provider_cpu_s=r(me1 - me0),
        loadavg_before=la0, loadavg_after=loadavg())
    usages = [p.usage() for p in procs]
    out["worker_cpu_s"] = r(sum(u["worker_cpu_user_s"] + u["worker_cpu_sys_s"] for u in usages))
    out["worker_peak_rss_mb"] = max(u["worker_peak_rss_mb"] for u in usages)
    out["worker_rss_sampled_max_mb"] = max((u["worker_rss_sampled_max_mb"] or 0) for u in usages)
    if written:
        for key in ("worker_cpu_s", "db_cpu_s", "provider_cpu_s"):
            if out.get(key) is not None:
                out[key.replace("_cpu_s", "_cpu_ms_per_vector")] = r(out[key] / written * 1000, 3)
        if startup_cpu_s is not None:  # start-up (imports, connect) is paid once per process
            net = out["worker_cpu_s"] - workers * startup_cpu_s
            out["worker_cpu_ms_per_vector_net"] = r(max(net, 0) / written * 1000, 3)
        if out.get("db_cpu_ms_per_vector"):
            # if one database backend did all the work serially, this would be its ceiling
            out["db_cpu_bound_vectors_per_s"] = r(1000 / out["db_cpu_ms_per_vector"], 0)
            # one worker runs claim (db), embed (worker + provider), complete (db) one
            # after another: on an otherwise idle machine it cannot beat this
            parts = [out.get("worker_cpu_ms_per_vector_net", out.get("worker_cpu_ms_per_vector")),
                     out["db_cpu_ms_per_vector"], out.get("provider_cpu_ms_per_vector")]
            if workers == 1 and all(x is not None for x in parts):
                out["serial_cpu_bound_vectors_per_s"] = r(1000 / sum(parts), 0)
    return out


# ------------------------------------------------------------------ the plan's loop

class PlanEmbeddingLoop:
    """The original plan's background generator, faithfully: EmbeddingGenerator.
    generate_missing_job_embeddings -> EmbeddingJobMatcher.generate_job_embedding ->
    EmbeddingService.get_embedding / create_job_profile_text, with psycopg 3
    (dict_row for RealDictCursor) instead of psycopg2. One request per row, one
    UPDATE and commit per row, time.sleep(0.1) after each row."""

    def __init__(self, url: str, api_key: str, base_url: str):
        import openai

        self.connection = psycopg.connect(url)  # psycopg2-style: transactions, commit()
        self.openai_client = openai.OpenAI(api_key=api_key, base_url=base_url)
        self.embedding_cache: dict[str, np.ndarray] = {}
        self.errors = 0
        self.log = logging.getLogger("bench.plan")

    def close(self) -> None:
        self.connection.close()
        self.openai_client.close()

    # EmbeddingService -------------------------------------------------------------
    def get_embedding(self, text: str, use_cache: bool = True) -> np.ndarray:
        if not text or not text.strip():
            return np.zeros(1536)
        cache_key = hashlib.md5(text.encode()).hexdigest()
        if use_cache and cache_key in self.embedding_cache:
            return self.embedding_cache[cache_key]
        try:
            response = self.openai_client.embeddings.create(model="text-embedding-3-small",
                                                            input=text)
            embedding = np.array(response.data[0].embedding)
            if use_cache:
                self.embedding_cache[cache_key] = embedding
            return embedding
        except Exception as e:
            self.log.error(f"Error generating embedding: {e}")
            self.errors += 1
            return np.zeros(1536)

    @staticmethod
    def create_job_profile_text(job: dict) -> str:
        profile_parts = []
        title = job.get('title', '') or ''
        company = job.get('company', '') or ''
        if title:
            profile_parts.append(f"Job title: {title}")
        if company:
            profile_parts.append(f"Company: {company}")
        ai_job_titles = job.get('ai_job_titles', []) or []
        ai_job_function = job.get('ai_job_function', '') or ''
        ai_job_level = job.get('ai_job_level', []) or []
        if ai_job_titles:
            profile_parts.append(f"Job variations: {', '.join(ai_job_titles)}")
        if ai_job_function:
            profile_parts.append(f"Job function: {ai_job_function}")
        if ai_job_level:
            profile_parts.append(f"Job level: {', '.join(ai_job_level)}")
        ai_industry = job.get('ai_industry', []) or []
        ai_city = job.get('ai_city', '') or ''
        ai_state = job.get('ai_state', '') or ''
        ai_country = job.get('ai_country', '') or ''
        location = job.get('location', '') or ''
        if ai_industry:
            profile_parts.append(f"Industry: {', '.join(ai_industry)}")
        if ai_city and ai_state:
            profile_parts.append(f"Location: {ai_city}, {ai_state}")
        elif location:
            profile_parts.append(f"Location: {location}")
        if ai_country:
            profile_parts.append(f"Country: {ai_country}")
        ai_work_arrangement = job.get('ai_work_arrangement', '') or ''
        ai_remote_allowed = job.get('ai_remote_allowed', False)
        if ai_work_arrangement:
            profile_parts.append(f"Work arrangement: {ai_work_arrangement}")
        if ai_remote_allowed:
            profile_parts.append("Remote work allowed")
        ai_required_skills = job.get('ai_required_skills', []) or []
        ai_preferred_skills = job.get('ai_preferred_skills', []) or []
        ai_years_experience_min = job.get('ai_years_experience_min', 0) or 0
        ai_years_experience_max = job.get('ai_years_experience_max', 0) or 0
        if ai_required_skills:
            profile_parts.append(f"Required skills: {', '.join(ai_required_skills)}")
        if ai_preferred_skills:
            profile_parts.append(f"Preferred skills: {', '.join(ai_preferred_skills)}")
        if ai_years_experience_min and ai_years_experience_max:
            profile_parts.append(f"Experience required: {ai_years_experience_min}-{ai_years_experience_max} years")
        elif ai_years_experience_min:
            profile_parts.append(f"Minimum experience: {ai_years_experience_min} years")
        ai_salary_min = job.get('ai_salary_min', 0) or 0
        ai_salary_max = job.get('ai_salary_max', 0) or 0
        ai_salary_currency = job.get('ai_salary_currency', '') or ''
        if ai_salary_min and ai_salary_max:
            profile_parts.append(f"Salary: {ai_salary_currency} {ai_salary_min:,} - {ai_salary_max:,}")
        elif ai_salary_min:
            profile_parts.append(f"Minimum salary: {ai_salary_currency} {ai_salary_min:,}")
        description = job.get('description', '') or ''
        ai_summary = job.get('ai_summary', '') or ''
        if ai_summary:
            profile_parts.append(f"Summary: {ai_summary}")
        elif description:
            desc_snippet = description[:300] + "..." if len(description) > 300 else description
            profile_parts.append(f"Description: {desc_snippet}")
        return ". ".join(profile_parts) if profile_parts else "Job posting"

    # EmbeddingJobMatcher ------------------------------------------------------------
    def generate_job_embedding(self, job_id: int) -> bool:
        from psycopg.rows import dict_row

        try:
            cursor = self.connection.cursor(row_factory=dict_row)
            cursor.execute("SELECT * FROM canonical_jobs WHERE id = %s", (job_id,))
            job = cursor.fetchone()
            if not job:
                self.log.warning(f"No job found with id {job_id}")
                return False
            profile_text = self.create_job_profile_text(dict(job))
            embedding = self.get_embedding(profile_text)
            cursor.execute("""
                UPDATE canonical_jobs 
                SET job_embedding = %s,
                    job_embedding_text = %s,
                    job_embedding_updated_at = NOW(),
                    embedding_version = 1
                WHERE id = %s
            """, (embedding.tolist(), profile_text, job_id))
            self.connection.commit()
            self.log.info(f"Generated embedding for job {job_id}")
            return True
        except Exception as e:
            self.log.error(f"Error generating job embedding: {e}")
            self.errors += 1
            self.connection.rollback()
            return False

    # EmbeddingGenerator ---------------------------------------------------------------
    def generate_missing_job_embeddings(self, batch_size: int = 100) -> int:
        try:
            cursor = self.connection.cursor()
            cursor.execute("""
                SELECT id FROM canonical_jobs 
                WHERE job_embedding IS NULL 
                AND posted_date >= CURRENT_DATE - INTERVAL '60 days'
                AND title IS NOT NULL
                LIMIT %s
            """, (batch_size,))
            job_ids = [row[0] for row in cursor.fetchall()]
            if not job_ids:
                return 0
            success_count = 0
            for job_id in job_ids:
                if self.generate_job_embedding(job_id):
                    success_count += 1
                time.sleep(0.1)  # Rate limiting
            return success_count
        except Exception as e:
            self.log.error(f"Error generating job embeddings: {e}")
            self.errors += 1
            return 0


def run_plan(bdb: BenchDb, conn, provider: FakeOpenAI, cap: int, rows: int) -> dict:
    load_jobs(conn, rows)
    meter = ServerCpu(conn)
    plan = PlanEmbeddingLoop(bdb.url, API_KEY, provider.base_url)
    try:
        la0, db0, me0 = loadavg(), meter.total(), time.process_time()
        t0 = time.perf_counter()
        done = plan.generate_missing_job_embeddings(cap)
        wall = time.perf_counter() - t0
        db1, me1 = meter.total(), time.process_time()
    finally:
        plan.close()
    stored = conn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding IS NOT NULL"
                          ).fetchone()[0]
    return {"provider_latency_s": provider.latency, "rows_cap": cap, "rows_written": done,
            "rows_stored": stored, "errors": plan.errors, "wall_s": r(wall),
            "vectors_per_s": r(done / wall, 2) if wall else None,
            "ms_per_row": r(wall / done * 1000, 1) if done else None,
            "db_cpu_s": r(db1 - db0) if db0 is not None and db1 is not None else None,
            "client_cpu_s": r(me1 - me0),
            "scheduled_rate_per_s": r(100 / 900, 3),  # the plan schedules 100 jobs every 15 min
            "loadavg_before": la0, "loadavg_after": loadavg()}


# ------------------------------------------------------------------ sections

def section_worker(bdb: BenchDb, conn, cache: _EmbeddingCache, args, results: dict) -> None:
    n = args.rows
    out = results.setdefault("worker", {})

    # the plan's loop -----------------------------------------------------------------
    out["plan_baseline"] = []
    for latency in (0.0, args.latency):
        with FakeOpenAI(api_key=API_KEY, latency=latency) as provider:
            cap = args.plan_rows if latency == 0 else max(1, args.plan_rows // 2)
            log(f"plan baseline: {cap} rows, provider latency {latency * 1000:.0f} ms")
            res = run_plan(bdb, conn, provider, cap, min(n, max(cap * 4, 100)))
            log(f"  {res['vectors_per_s']} rows/s ({res['ms_per_row']} ms/row)")
            out["plan_baseline"].append(res)

    # an empty queue: what a worker costs to start, and its RSS when idle -----------------
    with FakeOpenAI(api_key=API_KEY, latency=0.0) as provider:
        load_jobs(conn, 0)
        idle = run_workers(bdb, conn, provider, [], queued=0, timeout=args.timeout)
    out["startup"] = {k: idle[k] for k in ("wall_s", "worker_cpu_s", "worker_peak_rss_mb")}
    startup_cpu = idle["worker_cpu_s"]
    log(f"worker start-up with an empty queue: {idle['wall_s']} s, {startup_cpu} s CPU,"
        f" peak RSS {idle['worker_peak_rss_mb']} MB")

    # 200 ms latency, concurrency sweep -------------------------------------------------
    out["latency_sweep"] = []
    with FakeOpenAI(api_key=API_KEY, latency=args.latency) as provider:
        for rep, (conc, rs) in [(i, x) for i in range(args.sweep_repeats) for x in args.sweep]:
            batch = max(400, conc * rs)
            ceiling = conc * rs / args.latency if args.latency else float("inf")
            rows = min(n, max(args.min_sweep_rows, int(ceiling * args.sweep_seconds)))
            queued = load_jobs(conn, rows)
            log(f"latency {args.latency * 1000:.0f} ms: concurrency {conc}, request size {rs},"
                f" batch {batch}, {rows} rows")
            res = run_workers(bdb, conn, provider,
                              ["--batch-size", batch, "--request-size", rs, "--concurrency", conc],
                              queued=queued, timeout=args.timeout, startup_cpu_s=startup_cpu)
            res.update(provider_latency_s=args.latency, concurrency=conc, request_size=rs,
                       batch_size=batch, provider_ceiling_per_s=r(ceiling, 0), repeat=rep)
            log(f"  {res['vectors_per_s']} vectors/s (db cpu {res.get('db_cpu_ms_per_vector')} ms/vector,"
                f" load {res['loadavg_after'][0]})")
            out["latency_sweep"].append(res)
    out["latency_sweep_summary"] = summarise(
        out["latency_sweep"], lambda x: f"conc {x['concurrency']}, req {x['request_size']}, batch {x['batch_size']}",
        extra=("concurrency", "request_size", "batch_size", "provider_ceiling_per_s"))

    # zero latency ----------------------------------------------------------------------
    out["zero_latency"] = []
    with FakeOpenAI(api_key=API_KEY, latency=0.0) as provider:
        for name, flags, workers, ivfflat in args.zero_configs:
            queued = load_jobs(conn, n)
            index_info = None
            if ivfflat:
                index_info = create_ivfflat(conn, max(1, n // 1000))
            log(f"zero latency: {name} ({' '.join(map(str, flags)) or 'defaults'},"
                f" {workers} worker{'s' * (workers > 1)}), {n} rows")
            res = run_workers(bdb, conn, provider, flags, workers=workers, queued=queued,
                              timeout=args.timeout, startup_cpu_s=startup_cpu)
            res.update(name=name, provider_latency_s=0.0, ivfflat_index=index_info)
            log(f"  {res['vectors_per_s']} vectors/s, peak RSS {res['worker_peak_rss_mb']} MB"
                f" (worker cpu {res.get('worker_cpu_ms_per_vector_net')} ms/vector, db cpu"
                f" {res.get('db_cpu_ms_per_vector')} ms/vector, load {res['loadavg_after'][0]})")
            out["zero_latency"].append(res)
            if ivfflat:
                res["sizes_with_index"] = table_sizes(conn)["canonical_jobs"]
                conn.execute("DROP INDEX IF EXISTS canonical_jobs_job_embedding_ivfflat")
            out["zero_latency_summary"] = summarise(out["zero_latency"], lambda x: x["name"],
                                                    extra=("flags", "workers"))
            if name == "defaults" and "tables_after_zero_latency_defaults" not in results.get("memory", {}):
                results.setdefault("memory", {})["tables_after_zero_latency_defaults"] = \
                    table_sizes(conn)


def create_ivfflat(conn, lists: int) -> dict:
    """The README's per-model partial expression index (empty table: its lists
    are trained on nothing, which changes recall, not the cost of an insert)."""
    t0 = time.perf_counter()
    conn.execute("DROP INDEX IF EXISTS canonical_jobs_job_embedding_ivfflat")
    conn.execute(sql.SQL(
        "CREATE INDEX canonical_jobs_job_embedding_ivfflat ON canonical_jobs USING ivfflat"
        " ((job_embedding::vector({d})) vector_cosine_ops) WITH (lists = {l})"
        " WHERE job_embedding_model = {m}").format(d=sql.Literal(DIMS), l=sql.Literal(lists),
                                                   m=sql.Literal(MODEL)))
    return {"lists": lists, "build_s": r(time.perf_counter() - t0)}


def section_freshness(bdb: BenchDb, conn, cache: _EmbeddingCache, args, results: dict) -> None:
    """Seekers' preference UPDATEs with a long-running worker (NOTIFY wakes it)."""
    out = results.setdefault("freshness", [])
    queued = load_jobs(conn, args.fresh_jobs)
    seekers = generate_seekers(args.fresh_seekers, seed=SEED + 4)
    cols = sql.SQL(", ").join(map(sql.Identifier, SEEKER_COLUMNS))
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY user_preferences ({}) FROM STDIN").format(cols)) as cp:
            for s in seekers:
                cp.write_row([s[c] for c in SEEKER_COLUMNS])
    conn.execute("ANALYZE user_preferences")
    rng = random.Random(SEED)
    # every update gives seeker u the roles/skills/categories of another seeker
    plan = []
    ids = rng.sample(range(1, args.fresh_seekers + 1), min(args.fresh_updates, args.fresh_seekers))
    while len(ids) < args.fresh_updates:
        ids.append(rng.randrange(1, args.fresh_seekers + 1))
    for k, uid in enumerate(ids):
        donor = seekers[(uid + 1 + rng.randrange(args.fresh_seekers - 1)) % args.fresh_seekers]
        plan.append((uid, donor["job_roles"], donor["technical_skills"], donor["job_categories"]))
    for npass, latency in enumerate(args.fresh_latencies):
        # every pass changes every text again (a role no seeker had before)
        updates = [(uid, roles + [f"Role variant {npass}-{k}"], skills, cats)
                   for k, (uid, roles, skills, cats) in enumerate(plan)]
        with FakeOpenAI(api_key=API_KEY, latency=latency) as provider:
            # the seekers' and jobs' texts now, and the texts after each update, are cached
            env = provider_env(bdb.url, provider)
            worker = Proc(worker_cmd("--poll-interval", 5, "--refresh-interval", 300), env)
            try:
                t0 = time.monotonic()
                while conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]:
                    if worker.poll():
                        raise RuntimeError(f"worker exited {worker.returncode}:\n{worker.stderr()[-3000:]}")
                    if time.monotonic() - t0 > args.timeout:
                        raise RuntimeError("the worker did not drain the initial queue")
                    time.sleep(0.1)
                log(f"freshness: {len(updates)} preference updates, provider latency"
                    f" {latency * 1000:.0f} ms, worker running (LISTEN/NOTIFY, poll 5 s)")
                res = measure_freshness(bdb, updates, latency, worker, args)
            finally:
                if not worker.poll():
                    os.kill(worker.pid, signal.SIGTERM)
                worker.wait(30)
            ev = parse_events(worker.stderr(), strict=False)
            stopped = [e for e in ev if e.get("msg") == "worker stopped"]
            res.update(worker_exit_code=worker.returncode,
                       worker_written=stopped[-1]["written"] if stopped else None,
                       worker_peak_rss_mb=worker.usage()["worker_peak_rss_mb"],
                       initial_rows=queued + args.fresh_seekers)
            log(f"  p50 {res['vector_visible_p50_s']} s, p95 {res['vector_visible_p95_s']} s"
                f" (match_jobs answered: p50 {res['match_answered_p50_s']} s)")
            out.append(res)
            # the next latency starts from the updated texts; restore nothing


def measure_freshness(bdb: BenchDb, plan, latency: float, worker: Proc, args) -> dict:
    visible, answered, match_ms, commit_ms = [], [], [], []
    changed = semantic = 0
    fresh_sql = ("SELECT embedding_hash IS NOT DISTINCT FROM jobmatch_text_hash(user_profile_text(u))"
                 " FROM user_preferences AS u WHERE user_id = %s")
    # answered from the new vector: fitting jobs ('semantic') and near misses
    # ('near_miss', issue #13) both come from it; 'keyword' or nothing does not
    match_sql = ("SELECT coalesce(array_agg(job_id ORDER BY match_score DESC, job_id), '{}'),"
                 " coalesce(bool_and(match_method IN ('semantic', 'near_miss')), false)"
                 " FROM match_jobs(%s, 10)")
    with bdb.connect() as w, bdb.connect() as rd:
        w.prepare_threshold = rd.prepare_threshold = 0
        for uid, roles, skills, cats in plan:
            before = rd.execute(match_sql, [uid]).fetchone()[0]
            t0 = time.perf_counter()
            w.execute("UPDATE user_preferences SET job_roles = %s, technical_skills = %s,"
                      " job_categories = %s WHERE user_id = %s", [roles, skills, cats, uid])
            t1 = time.perf_counter()
            while True:
                if rd.execute(fresh_sql, [uid]).fetchone()[0]:
                    break
                if time.perf_counter() - t0 > args.timeout:
                    raise RuntimeError(f"seeker {uid}: no fresh vector after {args.timeout}s")
                if worker.poll():
                    raise RuntimeError(f"worker exited {worker.returncode}:\n{worker.stderr()[-3000:]}")
                time.sleep(0.002)
            t2 = time.perf_counter()
            after, is_semantic = rd.execute(match_sql, [uid]).fetchone()
            t3 = time.perf_counter()
            visible.append(t2 - t0)
            answered.append(t3 - t0)
            match_ms.append((t3 - t2) * 1000)
            commit_ms.append((t1 - t0) * 1000)
            changed += after != before
            semantic += bool(is_semantic)
            time.sleep(args.fresh_gap + random.random() * args.fresh_gap)
    return {"provider_latency_s": latency, "updates": len(plan), "poll_interval_s": 5.0,
            "vector_visible_p50_s": r(pct(visible, 0.5)), "vector_visible_p95_s": r(pct(visible, 0.95)),
            "vector_visible_max_s": r(max(visible)),
            "match_answered_p50_s": r(pct(answered, 0.5)), "match_answered_p95_s": r(pct(answered, 0.95)),
            "match_jobs_ms_p50": r(pct(match_ms, 0.5), 1), "update_commit_ms_p50": r(pct(commit_ms, 0.5), 1),
            "answers_changed": changed, "answers_semantic": semantic,
            "samples_s": [r(x, 4) for x in visible]}


def section_write_path(bdb: BenchDb, conn, args, results: dict) -> None:
    out = results.setdefault("write_path", {})
    n = args.bulk_rows
    backend = conn.info.backend_pid
    payload = bytearray()
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY (SELECT {c} FROM bench_job_src WHERE n < {n} ORDER BY n)"
                              " TO STDOUT").format(c=JOB_COLS_SQL, n=sql.Literal(n))) as cp:
            for chunk in cp:
                payload += chunk
    payload = bytes(payload)

    def one(method: str, triggers: bool) -> dict:
        conn.execute("TRUNCATE canonical_jobs, user_preferences RESTART IDENTITY")
        conn.execute("TRUNCATE embedding_queue, embedding_dead_letter")
        checkpoint(conn)
        if not triggers:
            conn.execute("ALTER TABLE canonical_jobs DISABLE TRIGGER USER")
        try:
            c0, t0 = proc_cpu(backend), time.perf_counter()
            if method == "insert_select":
                conn.execute(sql.SQL("INSERT INTO canonical_jobs ({c}) SELECT {c} FROM bench_job_src"
                                     " WHERE n < %s ORDER BY n").format(c=JOB_COLS_SQL), [n])
            else:
                with conn.transaction(), conn.cursor() as cur:
                    with cur.copy(sql.SQL("COPY canonical_jobs ({}) FROM STDIN").format(JOB_COLS_SQL)) as cp:
                        for i in range(0, len(payload), 1 << 20):
                            cp.write(payload[i:i + (1 << 20)])
            wall, cpu = time.perf_counter() - t0, proc_cpu(backend)
        finally:
            if not triggers:
                conn.execute("ALTER TABLE canonical_jobs ENABLE TRIGGER USER")
        q = conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]
        return {"wall_s": wall, "backend_cpu_s": None if cpu is None else cpu - c0, "queued": q}

    bulk = {}
    for method in ("insert_select", "copy"):
        runs = {True: [], False: []}
        for rep in range(args.repeats):
            for triggers in ((True, False) if rep % 2 == 0 else (False, True)):
                runs[triggers].append(one(method, triggers))
        res = {"rows": n, "repeats": args.repeats}
        for triggers, name in ((True, "with_triggers"), (False, "without_triggers")):
            walls = [x["wall_s"] for x in runs[triggers]]
            cpus = [x["backend_cpu_s"] for x in runs[triggers] if x["backend_cpu_s"] is not None]
            res[name] = {"wall_s_median": r(statistics.median(walls)), "wall_s_all": [r(w) for w in walls],
                         "backend_cpu_s_median": r(statistics.median(cpus)) if cpus else None,
                         "rows_per_s": r(n / statistics.median(walls), 0),
                         "queued": [x["queued"] for x in runs[triggers]]}
        w, wo = res["with_triggers"], res["without_triggers"]
        res["ratio_wall"] = r(w["wall_s_median"] / wo["wall_s_median"], 3)
        if w["backend_cpu_s_median"] and wo["backend_cpu_s_median"]:
            res["ratio_backend_cpu"] = r(w["backend_cpu_s_median"] / wo["backend_cpu_s_median"], 3)
        res["trigger_us_per_row_wall"] = r((w["wall_s_median"] - wo["wall_s_median"]) / n * 1e6, 1)
        bulk[method] = res
        log(f"bulk {method} of {n} jobs: with triggers {w['wall_s_median']} s, without"
            f" {wo['wall_s_median']} s, ratio {res['ratio_wall']} (backend cpu ratio"
            f" {res.get('ratio_backend_cpu')})")
    out["bulk"] = bulk

    # single-row UPDATEs on the loaded table (autocommit, one statement per transaction)
    one("insert_select", True)
    conn.execute("TRUNCATE embedding_queue")
    conn.execute("VACUUM ANALYZE canonical_jobs")
    rng = random.Random(SEED)
    m = args.single_updates
    ids = rng.sample(range(1, n + 1), min(n, 4 * m))
    cases = [("changes_text", True), ("changes_text", False),
             ("keeps_text", True), ("keeps_text", False)]
    single = []
    for k, (kind, triggers) in enumerate(cases):
        chunk = ids[k * m:(k + 1) * m] if len(ids) >= 4 * m else ids[:m]
        if kind == "changes_text":
            # ai_job_function is part of job_profile_text, not of the keyword
            # document (ai_summary was, until role-focused texts left a job's
            # summary out when it names skills: issue #13)
            stmt = "UPDATE canonical_jobs SET ai_job_function = %s WHERE id = %s"
            params = [[f"Updated function {k}-{i}", i] for i in chunk]
        else:  # ai_employment_type is not
            stmt = "UPDATE canonical_jobs SET ai_employment_type = %s WHERE id = %s"
            params = [["Contract" if i % 2 else "Part-time", i] for i in chunk]
        q0 = conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]
        if not triggers:
            conn.execute("ALTER TABLE canonical_jobs DISABLE TRIGGER USER")
        try:
            lat = []
            c0 = proc_cpu(backend)
            for p in params:
                t0 = time.perf_counter()
                conn.execute(stmt, p)
                lat.append(time.perf_counter() - t0)
            c1 = proc_cpu(backend)
        finally:
            if not triggers:
                conn.execute("ALTER TABLE canonical_jobs ENABLE TRIGGER USER")
        q1 = conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]
        single.append({"update": kind, "triggers": triggers, "rows": len(params),
                       "us_per_row_median": r(statistics.median(lat) * 1e6, 1),
                       "us_per_row_mean": r(statistics.mean(lat) * 1e6, 1),
                       "us_per_row_p95": r(pct(lat, 0.95) * 1e6, 1),
                       "backend_cpu_us_per_row": r((c1 - c0) / len(params) * 1e6, 1) if c0 is not None else None,
                       "queued": q1 - q0})
        log(f"single-row UPDATE {kind}, triggers {'on' if triggers else 'off'}:"
            f" median {single[-1]['us_per_row_median']} us, backend cpu"
            f" {single[-1]['backend_cpu_us_per_row']} us/row, queued {q1 - q0}")
    out["single_row_updates"] = single


# ------------------------------------------------------------------ profile (py-spy)

PHASES = (("claim", ("claim (jobmatch/queue.py",)),
          ("complete", ("complete (jobmatch/queue.py",)),
          ("record_usage", ("record_usage (jobmatch/queue.py",)),
          ("embed", ("embed (jobmatch/openai_embedder.py",)))


def section_profile(bdb: BenchDb, conn, args, results: dict) -> None:
    """py-spy (--idle, all threads) on one extra zero-latency run with the defaults:
    where the main thread's wall time goes, and the busiest functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        results["profile"] = {"error": "py-spy not installed (pip install py-spy)"}
        return
    queued = load_jobs(conn, args.rows)
    raw = Path(tempfile.mkdtemp()) / "worker.raw"
    with FakeOpenAI(api_key=API_KEY, latency=0.0) as provider:
        cmd = [spy, "record", "--idle", "--threads", "--rate", "250", "--format", "raw",
               "--output", str(raw), "--", *worker_cmd("--once")]
        log(f"profile: py-spy on the defaults, {queued} rows")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=provider_env(bdb.url, provider), cwd=REPO,
                              capture_output=True, text=True, timeout=args.timeout)
        wall = time.perf_counter() - t0
    if proc.returncode != 0 or not raw.exists():
        results["profile"] = {"error": proc.stderr[-2000:]}
        return
    threads: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    leaf_busy: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = frames[0]
        threads[thread][stack] += int(count)
    # the main thread is the one that ran Worker._drain
    main = max(threads, key=lambda t: sum(c for s, c in threads[t].items() if "_drain (" in s))
    phases: collections.Counter = collections.Counter()
    total_main = sum(threads[main].values())
    for stack, count in threads[main].items():
        if "_drain (" not in stack:
            phases["start-up/shutdown"] += count
            continue
        for phase, needles in PHASES:
            if any(nd in stack for nd in needles):
                phases[phase] += count
                break
        else:
            phases["other (drain loop)"] += count
    # busiest leaf functions over all threads, idle waits excluded (py-spy marks
    # idle frames only by their function; these are the blocking calls)
    idle = {"wait", "select", "poll", "recv_into", "read", "acquire", "sleep", "readinto",
            "recv", "accept", "_wait_for_tstate_lock", "wait_conn", "_worker"}
    for t, stacks in threads.items():
        for stack, count in stacks.items():
            frames = stack.split(";")
            if len(frames) < 2:
                continue  # a thread with no Python frame
            func = frames[-1].split(" (")[0].rsplit(".", 1)[-1]
            if func not in idle:
                leaf_busy[frames[-1]] += count
    busy_total = sum(leaf_busy.values())
    results["profile"] = {
        "rows": queued, "wall_s_under_py_spy": r(wall), "samples_main_thread": total_main,
        "main_thread_share": {k: r(v / total_main, 3) for k, v in phases.most_common()},
        "top_busy_leaf_functions": [{"function": k, "share_of_busy_samples": r(v / busy_total, 3)}
                                    for k, v in leaf_busy.most_common(15)],
        "raw": str(raw)}
    log("  main thread: " + ", ".join(f"{k} {v / total_main:.0%}" for k, v in phases.most_common()))


def summarise(runs: list[dict], key, extra=()) -> list[dict]:
    """Per configuration: the median of the repeats (vectors/s and CPU per vector)."""
    groups: dict[str, list[dict]] = {}
    for x in runs:
        groups.setdefault(key(x), []).append(x)
    out = []
    for name, xs in groups.items():
        row = {"name": name, "runs": len(xs), **{k: xs[0].get(k) for k in extra}}
        for k in ("vectors_per_s", "db_cpu_ms_per_vector", "worker_cpu_ms_per_vector",
                  "worker_cpu_ms_per_vector_net", "provider_cpu_ms_per_vector",
                  "serial_cpu_bound_vectors_per_s", "worker_peak_rss_mb"):
            vals = [x[k] for x in xs if x.get(k) is not None]
            if vals:
                row[k] = r(statistics.median(vals), 3)
                if k == "vectors_per_s":
                    row["vectors_per_s_all"] = vals
        row["loadavg_after"] = [x["loadavg_after"][0] for x in xs]
        out.append(row)
    return out


# ------------------------------------------------------------------ goals, table, files

def evaluate(results: dict) -> dict:
    goals = {}
    w = results.get("worker", {})
    zero = [x for x in w.get("zero_latency", []) if x.get("name") == "defaults"]
    if zero:
        v = r(statistics.median(x["vectors_per_s"] for x in zero), 1)
        best = max(w.get("zero_latency_summary", []), key=lambda x: x.get("vectors_per_s") or 0)
        goals["zero_latency_vectors_per_s"] = {
            "target": f">= {ZERO_LATENCY_GOAL:.0f} with the defaults", "value": v,
            "runs": [x["vectors_per_s"] for x in zero],
            "serial_cpu_bound_estimate": r(statistics.median(
                x.get("serial_cpu_bound_vectors_per_s") or 0 for x in zero), 0),
            "best_config": {"name": best["name"], "vectors_per_s": best.get("vectors_per_s")},
            "met": bool(v and v >= ZERO_LATENCY_GOAL)}
    summary = w.get("latency_sweep_summary", [])
    sweep = [x for x in summary if x["request_size"] == min((y["request_size"] for y in summary), default=0)]
    if sweep and zero:
        # A batch's claim and requests take turns (only the write-back overlaps the
        # next batch), so a batch of B rows in `waves` rounds of requests takes
        # about waves x L + B / R0 (an upper bound), where R0
        # is the zero-latency (database-bound) rate of the defaults. "The database is
        # the limit" once the database's share of that time, (B / R0) / (waves x L +
        # B / R0), is at least 75%; below that each step up in concurrency must add
        # >= 10% throughput.
        r0 = v
        latency = results.get("meta", {}).get("slow_provider_latency_s", 0.2)
        def waves(x) -> int:  # rounds of requests per batch
            return math.ceil(math.ceil(x["batch_size"] / x["request_size"]) / x["concurrency"])

        steps = []
        for a, b in zip(sweep, sweep[1:]):
            db_time = a["batch_size"] / r0
            share = db_time / (waves(a) * latency + db_time)
            steps.append({"from": a["concurrency"], "to": b["concurrency"],
                          "gain": r(b["vectors_per_s"] / a["vectors_per_s"], 2),
                          "db_share_of_batch_time_at_from": r(share, 2),
                          "ok": share >= 0.75 or b["vectors_per_s"] >= 1.1 * a["vectors_per_s"]})
        model = {str(x["concurrency"]): r(x["batch_size"] / (waves(x) * latency + x["batch_size"] / r0), 0)
                 for x in sweep}
        goals["latency_scales_with_concurrency"] = {
            "target": "throughput grows with concurrency until the database is the limit",
            "rates": {str(x["concurrency"]): x["vectors_per_s"] for x in sweep},
            "serial_model_rates": model, "zero_latency_rate": r0, "steps": steps,
            "met": all(s["ok"] for s in steps)}
    bulk = results.get("write_path", {}).get("bulk", {})
    if bulk:
        ratios = {k: v["ratio_wall"] for k, v in bulk.items()}
        goals["trigger_bulk_ratio"] = {"target": f"<= {TRIGGER_RATIO_GOAL}", "value": ratios,
                                       "met": all(x <= TRIGGER_RATIO_GOAL for x in ratios.values())}
    fresh = [x for x in results.get("freshness", []) if x["provider_latency_s"] == 0]
    if fresh:
        goals["freshness_p50_s"] = {"target": f"<= {FRESHNESS_P50_GOAL}", "value": fresh[0]["match_answered_p50_s"],
                                    "p95": fresh[0]["match_answered_p95_s"],
                                    "met": fresh[0]["match_answered_p50_s"] <= FRESHNESS_P50_GOAL}
    return goals


def table(results: dict) -> str:
    lines = []
    add = lines.append
    w = results.get("worker", {})
    add(f"{'worker run (median of runs)':58s} {'vec/s':>8s} {'runs':>5s}  {'worker':>7s} {'db':>7s} {'fake':>6s}"
        f" {'RSS MB':>7s} {'load':>5s} {'cpu est':>7s}  vec/s each run")
    add(f"{'':58s} {'':>8s} {'':>5s}  {'---- CPU ms/vector ---':>22s}")
    for x in w.get("plan_baseline", []):
        name = f"plan loop (1 req/row, sleep 0.1, UPDATE/row), {x['provider_latency_s'] * 1000:.0f} ms"
        add(f"{name:58s} {x['vectors_per_s']:8.2f} {1:5d}   {'':>7s} {'':>7s} {'':>6s} {'':>7s} {x['loadavg_after'][0]:5.1f}")
    lat = results.get("meta", {}).get("slow_provider_latency_s", 0.2)
    for x in w.get("latency_sweep_summary", []) + w.get("zero_latency_summary", []):
        if "concurrency" in x:
            name = f"{lat * 1000:.0f} ms: {x['name']}"
        else:
            name = f"0 ms: {x['name']} ({x['flags'] or 'batch 400, req 100, conc 4'})"
        est = x.get("serial_cpu_bound_vectors_per_s")
        add(f"{name[:58]:58s} {x.get('vectors_per_s') or 0:8.0f} {x['runs']:5d}  "
            f" {x.get('worker_cpu_ms_per_vector_net') or 0:7.3f} {x.get('db_cpu_ms_per_vector') or 0:7.3f}"
            f" {x.get('provider_cpu_ms_per_vector') or 0:6.3f} {x.get('worker_peak_rss_mb') or 0:7.0f}"
            f" {statistics.median(x['loadavg_after']):5.1f} {f'{est:7.0f}' if est else '      -'}"
            f"  {x['vectors_per_s_all'] if x['runs'] > 1 else ''}")
    bulk = results.get("write_path", {}).get("bulk", {})
    if bulk:
        add("")
        add(f"{'bulk load':28s} {'rows':>7s} {'with trg s':>11s} {'without s':>10s} {'ratio':>6s} {'cpu ratio':>9s} {'us/row':>7s}")
        for k, v in bulk.items():
            add(f"{k:28s} {v['rows']:7d} {v['with_triggers']['wall_s_median']:11.2f}"
                f" {v['without_triggers']['wall_s_median']:10.2f} {v['ratio_wall']:6.2f}"
                f" {v.get('ratio_backend_cpu') or 0:9.2f} {v['trigger_us_per_row_wall']:7.1f}")
    single = results.get("write_path", {}).get("single_row_updates", [])
    if single:
        add("")
        add(f"{'single-row UPDATE (autocommit)':36s} {'median us':>10s} {'p95 us':>8s} {'cpu us':>8s} {'queued':>7s}")
        for s in single:
            name = f"{s['update']}, triggers {'on' if s['triggers'] else 'off'}"
            add(f"{name:36s} {s['us_per_row_median']:10.0f} {s['us_per_row_p95']:8.0f}"
                f" {s['backend_cpu_us_per_row'] or 0:8.0f} {s['queued']:7d}")
    fresh = results.get("freshness", [])
    if fresh:
        add("")
        add(f"{'freshness (UPDATE -> match_jobs)':36s} {'n':>4s} {'vec p50':>8s} {'vec p95':>8s} {'match p50':>10s} {'match p95':>10s} {'changed':>8s}")
        for f in fresh:
            name = f"provider {f['provider_latency_s'] * 1000:.0f} ms, worker running"
            add(f"{name:36s} {f['updates']:4d} {f['vector_visible_p50_s']:8.3f} {f['vector_visible_p95_s']:8.3f}"
                f" {f['match_answered_p50_s']:10.3f} {f['match_answered_p95_s']:10.3f} {f['answers_changed']:8d}")
    mem = results.get("memory", {}).get("tables_after_zero_latency_defaults")
    if mem:
        add("")
        add(f"{'table (after the zero-latency run)':36s} {'rows':>7s} {'heap MB':>8s} {'toast MB':>9s} {'index MB':>9s} {'total MB':>9s} {'B/row':>7s}")
        for t, v in mem.items():
            add(f"{t:36s} {v['rows']:7d} {v['heap_bytes'] / 2**20:8.1f} {v['toast_bytes'] / 2**20:9.1f}"
                f" {sum(v['indexes_bytes'].values()) / 2**20:9.1f} {v['total_bytes'] / 2**20:9.1f}"
                f" {v['bytes_per_row'] or 0:7d}")
    goals = results.get("goals", {})
    if goals:
        add("")
        for k, g in goals.items():
            add(f"goal {k}: {'MET' if g['met'] else 'NOT MET'} (target {g['target']};"
                f" value {g.get('value', g.get('rates'))})")
            if "serial_model_rates" in g:
                add(f"    serial model waves x L + B / R0 with R0 = {g['zero_latency_rate']}: {g['serial_model_rates']};"
                    f" database share of batch time at each step: "
                    f"{[s['db_share_of_batch_time_at_from'] for s in g['steps']]}")
    return "\n".join(lines)


def flatten(results: dict) -> list[dict]:
    rows = []

    def walk(prefix: str, obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
            seen: collections.Counter = collections.Counter()
            for i, x in enumerate(obj):
                if x.get("name"):
                    label = x["name"]
                elif "concurrency" in x:
                    label = f"c{x['concurrency']}_rs{x['request_size']}"
                elif "update" in x:
                    label = f"{x['update']}_triggers_{'on' if x['triggers'] else 'off'}"
                elif "mode" in x:
                    label = f"{x['mode']}_{x['provider_latency_s']}s_sql_{'fixed' if x['sql_fixes'] else 'as_is'}"
                elif "provider_latency_s" in x:
                    label = f"latency_{x['provider_latency_s']}s"
                else:
                    label = str(i)
                seen[label] += 1
                walk(f"{prefix}[{label}{'' if seen[label] == 1 else f' #{seen[label]}'}]", x)
        elif isinstance(obj, (int, float, str, bool)) or obj is None:
            rows.append({"metric": prefix, "value": obj})
        else:
            rows.append({"metric": prefix, "value": json.dumps(obj)})

    walk("", {k: v for k, v in results.items() if k != "meta"})
    return rows


# ------------------------------------------------------------------ main

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.worker_bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=None,
                   help="jobs per zero-latency worker run (default 20000; --quick 300)")
    p.add_argument("--bulk-rows", type=int, default=None, help="jobs per bulk load (default 100000)")
    p.add_argument("--quick", action="store_true",
                   help="a small, fast run of every section (smoke test; timings meaningless)")
    p.add_argument("--latency", type=float, default=0.2, help="slow provider's seconds per request")
    p.add_argument("--concurrency", default=None, help="sweep, e.g. 1,2,4,8,16")
    p.add_argument("--request-sizes", default=None, help="sweep request sizes, e.g. 100,2048")
    p.add_argument("--plan-rows", type=int, default=None, help="rows the plan's loop embeds (default 100)")
    p.add_argument("--fresh-updates", type=int, default=None, help="preference updates (default 50)")
    p.add_argument("--repeats", type=int, default=None, help="bulk loads per variant (default 3)")
    p.add_argument("--sweep-repeats", type=int, default=None,
                   help="runs of each latency-sweep configuration (default 2; medians are reported)")
    p.add_argument("--sections", default="worker,freshness,write_path",
                   help="comma list of worker, freshness, write_path")
    p.add_argument("--profile", action="store_true", help="also py-spy one zero-latency run")
    p.add_argument("--out", default=None, help="output path without extension"
                   " (default bench/results/worker-YYYYMMDD-HHMMSS)")
    p.add_argument("--reset", action="store_true",
                   help="allow wiping jobs/seekers in DATABASE_URL that the benchmark did not load")
    p.add_argument("--keep-server", action="store_true", help="leave the embedded bench server running")
    p.add_argument("--timeout", type=float, default=None, help="seconds per worker run before giving up")
    args = p.parse_args(argv)
    q = args.quick
    args.rows = args.rows or (300 if q else 20_000)
    args.bulk_rows = args.bulk_rows or (2_000 if q else 100_000)
    args.plan_rows = args.plan_rows or (6 if q else 100)
    args.fresh_updates = args.fresh_updates or (5 if q else 50)
    args.repeats = args.repeats or (1 if q else 3)
    args.timeout = args.timeout or (120.0 if q else 900.0)
    conc = [int(x) for x in (args.concurrency or ("1,4" if q else "1,2,4,8,16")).split(",")]
    sizes = [int(x) for x in (args.request_sizes or ("100" if q else "100,2048")).split(",")]
    args.sweep = [(c, sizes[0]) for c in conc]
    for rs in sizes[1:]:  # larger requests: the low concurrencies (a batch of 16 x 2048 is the table)
        args.sweep += [(c, rs) for c in conc if c * rs <= max(args.rows // 2, rs)][:2]
    if q:
        args.latency = min(args.latency, 0.05)
    args.min_sweep_rows = min(args.rows, 100 if q else 1000)
    args.sweep_repeats = args.sweep_repeats or (1 if q else 2)
    args.sweep_seconds = 8.0
    args.zero_configs = [("defaults", [], 1, False)]
    if not q:  # the defaults three times, between the others: the machine is shared
        args.zero_configs += [("batch 2048, request 512", ["--batch-size", 2048, "--request-size", 512], 1, False),
                              ("defaults", [], 1, False),
                              ("two workers", [], 2, False),
                              ("defaults", [], 1, False),
                              ("defaults + ivfflat index", [], 1, True)]
    args.fresh_jobs = min(args.rows, 300 if q else 5_000)
    args.fresh_seekers = max(args.fresh_updates, 20 if q else 200)
    args.fresh_latencies = [0.0] if q else [0.0, args.latency]
    args.fresh_gap = 0.05 if q else 0.15
    args.single_updates = 50 if q else 1000
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("bench.plan").disabled = True
    started = dt.datetime.now(dt.timezone.utc)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"worker-{stamp}"
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {"meta": {
        "command": "python -m bench.worker_bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": started.isoformat(timespec="seconds"), "quick": args.quick,
        "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "loadavg_start": loadavg(), "model": MODEL, "dimensions": DIMS, "rows": args.rows,
        "bulk_rows": args.bulk_rows, "slow_provider_latency_s": args.latency}}
    bdb = BenchDb(args)
    cache = _EmbeddingCache()
    t_start = time.perf_counter()
    try:
        bdb.prepare()
        results["meta"]["database"] = bdb.info()
        with bdb.connect() as conn, cache.installed():
            need = max(args.rows, args.bulk_rows if "write_path" in args.sections else 0)
            gen = ensure_source(conn, need)
            if gen:
                log(f"  staged in {gen:.1f}s")
            # warm the fake provider's cache with every job text it will be asked for
            load_jobs(conn, args.rows)
            cache.warm(job_texts(conn))
            if "worker" in args.sections:
                section_worker(bdb, conn, cache, args, results)
            if args.profile:
                section_profile(bdb, conn, args, results)
            if "freshness" in args.sections:
                section_freshness(bdb, conn, cache, args, results)
            if "write_path" in args.sections:
                section_write_path(bdb, conn, args, results)
    finally:
        results["meta"]["loadavg_end"] = loadavg()
        results["meta"]["duration_s"] = r(time.perf_counter() - t_start, 1)
        results["goals"] = evaluate(results)
        out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        with out.with_suffix(".csv").open("w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=["metric", "value"])
            wr.writeheader()
            wr.writerows(flatten(results))
        bdb.close()
    print(table(results))
    print(f"\nload average at start {results['meta']['loadavg_start']}, end {results['meta']['loadavg_end']}"
          f" ({os.cpu_count()} CPUs); {results['meta']['duration_s']} s")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
