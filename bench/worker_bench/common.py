"""What every section of the worker benchmark uses: constants, CPU and
memory meters, the memoised fake provider, the bench database, the jobs
it loads, and `jobmatch worker` runs measured to the drain."""


from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from jobmatch import db as jm_db
from jobmatch.demo_data import JOB_COLUMNS, generate_jobs
from jobmatch.migrate import migrate
from support import fake_openai
from support.common import loadavg, log, percentile
from support.fake_openai import FakeOpenAI
from support.server import configure_embedded
from support.worker import parse_events, worker_env
from support.worker import worker_cmd as support_worker_cmd

REPO = Path(__file__).resolve().parents[2]

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

class EmbeddingCache:
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
    q = "SELECT jobmatch_job_profile_text(j) FROM canonical_jobs AS j ORDER BY id"
    return [t for (t,) in conn.execute(q + (" LIMIT %s" if n else ""), [n] if n else []).fetchall()]


def embedded_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding_model = %s"
                        " AND job_embedding_hash"
                        "     = jobmatch_text_hash(jobmatch_job_profile_text(canonical_jobs))",
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
