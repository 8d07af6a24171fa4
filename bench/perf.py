"""Performance benchmark of match_jobs against the alternatives, one command:

    python -m bench.perf --tier 100k --dims 1536 [--index ivfflat,hnsw] [--halfvec]
                         [--clients 1,2,4,8] [--queries N] [--out bench/results/NAME]

Data (bench.perf_data) is generated once and cached outside the repo
(JOBMATCH_BENCH_CACHE, default ~/.cache/jobmatch-bench); it goes into a
dedicated embedded PostgreSQL 18 + pgvector (JOBMATCH_BENCH_PGDATA) tuned for
the tier, database bench_<tier>_<dims>, or into DATABASE_URL. Loaded once;
later runs reuse it (and an index that was built with the same settings).

Methods, all on the same data, seekers and window, each measured the same
way (single-client p50/p99 latency; queries/s with 1, 2, 4, 8 concurrent
clients, each a process with its own connection; recall@10 against the
exact answer with the same window and threshold):

  exact      match_jobs with index scans disabled: the exact answer (ground truth)
  plan       the original plan as written: ivfflat lists=1000 created on the empty
             table, default probes (1), no iterative scan, LIMIT 2 x limit and the
             threshold applied afterwards in the client
  ivfflat / hnsw [halfvec]
             match_jobs with that index; the knob (probes / ef_search) is the
             cheapest that reaches the recall target on a tuning sample, found by
             the same sweep `jobmatch index tune` runs (the sweep is reported too)
  ... [ann path]    when the planner scanned exactly although the index was there:
             match_jobs again walking the index (enable_sort = off)
  keyword    match_jobs for seekers without a vector (full-text fallback)

The worker (vectors written per second) and write-path/freshness benchmarks
live elsewhere: bench/worker_bench/, bench/WORKER_RESULTS.md."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from jobmatch import db as jm_db
from jobmatch import index_tune
from support.common import loadavg, log

from . import perf_data, perf_db

REPO = Path(__file__).resolve().parents[1]
DEFAULT_QUERIES = {"tiny": 60, "2k": 400, "10k": 1000, "20k": 400, "100k": 1000, "600k": 500, "1m": 500}
TUNE_SAMPLE = 200
# The small tiers (issue #17: a 2,000-job bot): half their seekers state no
# constraint (no place, employment type or pay), and every figure is also
# given for each half.
SMALL_TIERS = ("2k", "20k")
UNCONSTRAIN_SQL = """
    UPDATE user_preferences SET preferred_locations = '{}', employment_types = '{}',
           salary_min = NULL, salary_max = NULL, willing_to_relocate = false
    WHERE user_id % 2 = 0 AND user_embedding IS NOT NULL
      AND (preferred_locations <> '{}' OR employment_types <> '{}' OR salary_min IS NOT NULL
           OR salary_max IS NOT NULL OR willing_to_relocate)"""
MATCH_SQL = "SELECT * FROM match_jobs(%s, %s)"
PLAN_USER_SQL = ("SELECT user_embedding FROM user_preferences"
                 " WHERE user_id = %s AND user_embedding IS NOT NULL")
# The plan's search_jobs_with_embeddings(), word for word but for the table name.
PLAN_SQL = """
                SELECT
                    *,
                    1 - (job_embedding <=> %s::vector) as similarity_score
                FROM plan_jobs
                WHERE job_embedding IS NOT NULL
                AND posted_date >= CURRENT_DATE - INTERVAL '60 days'
                ORDER BY job_embedding <=> %s::vector
                LIMIT %s
"""


def code_version() -> dict:
    """Which match_jobs was measured: the checkout's HEAD and the function files."""
    import hashlib
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "db/"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    digest = hashlib.sha256()
    for path in sorted((REPO / "db").rglob("*.sql")):
        digest.update(path.read_bytes())
    return {"git_head": head or None, "db_dirty": bool(dirty),
            "db_sha256": digest.hexdigest()[:16]}


def busy_cores(seconds: float = 1.0) -> float | None:
    """CPU cores other work uses while the benchmark itself is idle, not
    counting niced processes (they yield to the benchmark): what the machine
    takes away from the measurement that follows."""
    def snap():
        with open("/proc/stat") as fh:
            vals = [int(x) for x in fh.readline().split()[1:]]
        return sum(vals), vals[3] + vals[4] + vals[1]  # idle + iowait + nice
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except OSError:
        return None
    total = t1 - t0
    return round((1 - (i1 - i0) / total) * (os.cpu_count() or 1), 2) if total else None


# ----------------------------------------------------------------- queries

def run_query(conn, kind: str, uid: int, limit: int, threshold: float) -> list[tuple]:
    """One bot request; returns [(job_id, method)] in order."""
    if kind == "plan":
        row = conn.execute(PLAN_USER_SQL, [uid], prepare=True).fetchone()
        if row is None:
            return []
        emb = row[0]
        cur = conn.execute(PLAN_SQL, [emb, emb, limit * 2], prepare=True)
        names = [c.name for c in cur.description]
        i_id, i_sim = names.index("id"), names.index("similarity_score")
        out = [(r[i_id], "semantic") for r in cur.fetchall() if r[i_sim] >= threshold]
        return out[:limit]
    cur = conn.execute(MATCH_SQL, [uid, limit], prepare=True)
    return [(r[0], r[-1]) for r in cur.fetchall()]


def _connect(url: str, setup: list[str]):
    conn = jm_db.connect(url, autocommit=True)
    for s in setup:
        conn.execute(s)
    return conn


def single_client(url: str, kind: str, setup: list[str], uids: list[int], limit: int,
                  threshold: float, warm: int) -> tuple[dict, dict]:
    """Sequential latencies; returns (stats, answers by user)."""
    with _connect(url, setup) as conn:
        for uid in uids[:warm]:
            run_query(conn, kind, uid, limit, threshold)
        times, answers = [], {}
        for uid in uids:
            t0 = time.perf_counter()
            answers[uid] = run_query(conn, kind, uid, limit, threshold)
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return ({"p50_ms": round(float(np.percentile(ms, 50)), 2),
             "p99_ms": round(float(np.percentile(ms, 99)), 2),
             "mean_ms": round(float(ms.mean()), 2), "queries": len(uids),
             "by_user_ms": dict(zip(uids, [round(float(x), 3) for x in ms]))}, answers)


def _client(url, setup, kind, uids, limit, threshold, duration, barrier, results):
    conn = _connect(url, setup)
    for uid in uids[:3]:
        run_query(conn, kind, uid, limit, threshold)
    barrier.wait()
    lat = []
    t_start = time.perf_counter()
    t_end = t_start + duration
    i = 0
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        run_query(conn, kind, uids[i % len(uids)], limit, threshold)
        lat.append(time.perf_counter() - t0)
        i += 1
    results.put((len(lat), time.perf_counter() - t_start, lat))
    conn.close()


def concurrent(url: str, kind: str, setup: list[str], uids: list[int], limit: int,
               threshold: float, clients: int, duration: float) -> dict:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(clients)
    results = ctx.Queue()
    share = [uids[i::clients] or uids for i in range(clients)]
    procs = [ctx.Process(target=_client, args=(url, setup, kind, share[i], limit, threshold,
                                               duration, barrier, results))
             for i in range(clients)]
    for p in procs:
        p.start()
    got = [results.get(timeout=duration + 600) for _ in procs]
    for p in procs:
        p.join()
    qps = sum(n / elapsed for n, elapsed, _ in got)
    lat = np.array([x for _, _, ls in got for x in ls]) * 1000
    return {"qps": round(qps, 1), "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "queries": int(len(lat))}


def recall(answers: dict, exact: dict, k: int) -> float | None:
    vals = []
    for uid, want in exact.items():
        want_ids = [j for j, m in want if m == "semantic"][:k]
        if not want_ids:
            continue
        got = {j for j, m in answers.get(uid, []) if m == "semantic"}
        vals.append(len(got & set(want_ids)) / len(want_ids))
    return round(float(np.mean(vals)), 4) if vals else None


# ----------------------------------------------------------------- helpers

def choose_threshold(ds: perf_data.Dataset, rank: int = 50, quantile: float = 10,
                     window_days: float = 59.0, sample: int = 300) -> tuple[float, dict]:
    """A threshold most seekers clear with many jobs: the `quantile`th
    percentile over sampled seekers of their `rank`th best similarity in the
    window, rounded down to 0.01 (so ~90% of seekers have >= `rank` candidates)."""
    idx = np.nonzero(ds.job_age_days < window_days)[0]
    jobs = np.asarray(ds.jobs[idx[0]:idx[-1] + 1])[idx - idx[0]]
    q = np.asarray(ds.seekers[:sample])
    sims = q @ jobs.T
    r = min(rank, sims.shape[1]) - 1
    kth = -np.partition(-sims, r, axis=1)[:, r]
    thr = round(float(np.floor(np.percentile(kth.astype(np.float64), quantile) * 100)) / 100, 2)
    above = (sims >= thr).sum(axis=1)
    return thr, {"threshold": thr, "rank": rank, "percentile": quantile,
                 "candidates_above_median": int(np.median(above)),
                 "seekers_with_10_or_more": round(float((above >= 10).mean()), 3)}


def sizes(conn) -> dict:
    rows = conn.execute("""
        SELECT c.relname, c.relkind::text, pg_relation_size(c.oid),
               coalesce(pg_total_relation_size(c.reltoastrelid), 0)
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND (c.relname IN ('canonical_jobs', 'user_preferences', 'plan_jobs')
               OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN
                   ('canonical_jobs'::regclass, 'user_preferences'::regclass,
                    coalesce(to_regclass('plan_jobs'), 'canonical_jobs'::regclass))))
        ORDER BY 1""").fetchall()
    out = {}
    for name, kind, main, toast in rows:
        out[name] = {"kind": "table" if kind == "r" else "index",
                     "mb": round(main / 2**20, 1)}
        if kind == "r":
            out[name]["toast_mb"] = round(toast / 2**20, 1)
    return out


def ann_index_names(conn) -> list[tuple[str, str]]:
    return conn.execute("""
        SELECT c.relname, am.amname FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
        WHERE i.indrelid = 'canonical_jobs'::regclass AND am.amname IN ('ivfflat', 'hnsw')
        """).fetchall()


def index_scans(conn, name: str) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes"
                       " WHERE indexrelname = %s", [name]).fetchone()
    return int(row[0])


def build_mem(rows: int, dims: int, method: str, halfvec: bool) -> str:
    per = dims * (2 if halfvec else 4) + (700 if method == "hnsw" else 100)
    mb = int(rows * per * 1.3 / 2**20) + 256
    return f"{min(max(mb, 256), 10240)}MB"


def ensure_index(conn, method: str, halfvec: bool, m: int, efc: int, dims: int,
                 min_rows: int) -> dict:
    """The standard ANN index of canonical_jobs with this config (reused when
    an identical build is recorded); returns name, build seconds and lists."""
    name = "canonical_jobs_job_embedding_ann"
    # what `jobmatch index rebuild` would build now (the job index covers the
    # window plus jobmatch_settings.index_margin_days)
    _n, table, _meth, _half, lists, nrows, since, ddl = conn.execute(
        "SELECT index_name, table_name, method, is_halfvec, lists, row_count, posted_since, ddl"
        " FROM jobmatch_vector_index_ddl('job', NULL, %s, NULL, %s, %s, %s, %s)",
        [min_rows, method, halfvec, m, efc]).fetchone()
    rec = conn.execute("SELECT method, halfvec, lists, rows_at_build, hnsw_m,"
                       " hnsw_ef_construction, posted_since FROM vector_index_builds"
                       " WHERE index_name = %s", [name]).fetchone()
    present = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()[0]
    info = perf_db.bench_info(conn) or {}
    builds = info.get("index_builds", {})
    key = (f"{method}-{'halfvec' if halfvec else 'vector'}-m{m}-efc{efc}"
           f"{f'-since{since:%Y%m%d}' if since else ''}")
    if (present and rec and rec[0] == method and rec[1] == halfvec and rec[3] == nrows
            and rec[6] == since and (method != "hnsw" or (rec[4], rec[5]) == (m, efc))
            and key in builds):
        return {**builds[key], "reused": True}
    for other, _am in ann_index_names(conn):
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(other)))
    conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(
        sql.Literal(build_mem(nrows, dims, method, halfvec))))
    log(f"building {key} ({nrows} rows{f', lists={lists}' if lists else ''}) ...")
    load = loadavg()
    t0 = time.perf_counter()
    conn.execute(ddl)
    seconds = round(time.perf_counter() - t0, 1)
    conn.execute("RESET maintenance_work_mem")
    conn.execute("SELECT jobmatch_record_vector_index_build(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 [name, table, method, halfvec, lists, nrows, m if method == "hnsw" else None,
                  efc if method == "hnsw" else None, since])
    conn.execute("ANALYZE canonical_jobs")
    mb = conn.execute("SELECT pg_relation_size(%s::regclass)", [name]).fetchone()[0] / 2**20
    built = {"name": name, "build_s": seconds, "lists": lists, "rows": nrows, "mb": round(mb, 1),
             "posted_since": since.isoformat() if since else None, "loadavg_during": load,
             "maintenance_work_mem": build_mem(nrows, dims, method, halfvec)}
    builds[key] = built
    perf_db.set_info(conn, index_builds=builds)
    log(f"built {key} in {seconds}s")
    return {**built, "reused": False}


def warm_relations(conn, names: list[str]) -> None:
    if os.environ.get("DATABASE_URL"):
        return  # the server may be elsewhere: no files to read
    perf_db.preread(perf_db.relation_files(conn, names))


# ----------------------------------------------------------------- the run

def group_stats(single: dict, answers: dict, exact: dict | None, k: int,
                groups: dict[str, list[int]]) -> dict:
    """p50/p99/recall@k of each group of seekers (the small tiers' halves)."""
    out = {}
    for name, members in groups.items():
        ms = np.array([single["by_user_ms"][u] for u in members if u in single["by_user_ms"]])
        if not len(ms):
            continue
        sub = {u: exact[u] for u in members if exact is not None and u in exact}
        out[name] = {"p50_ms": round(float(np.percentile(ms, 50)), 2),
                     "p99_ms": round(float(np.percentile(ms, 99)), 2), "queries": len(ms),
                     "recall_at_10": recall(answers, sub, k) if exact is not None else None}
    return out


def measure_method(url, name, kind, setup, uids, limit, threshold, clients, duration, exact,
                   k, warm, admin, index_name=None, extra=None, groups=None) -> dict:
    log(f"{name}: single client, {len(uids)} queries")
    before = index_scans(admin, index_name) if index_name else None
    load_before = loadavg()
    others = busy_cores()
    single, answers = single_client(url, kind, setup, uids, limit, threshold, warm)
    row = {"method": name, **(extra or {}), "single": {**single, "busy_cores_before": others},
           "recall_at_10": recall(answers, exact, k) if exact is not None else None,
           "loadavg_before": load_before}
    if groups:
        row["groups"] = group_stats(single, answers, exact, k, groups)
    if index_name:
        used = index_scans(admin, index_name) - before
        row["index_scans_per_query"] = round(used / max(1, len(uids) + warm), 2)
        row["path"] = "ann" if used >= (len(uids) + warm) * 0.5 else "exact"
    else:
        row["path"] = extra.get("path") if extra else None
    row["concurrency"] = {}
    for c in clients:
        log(f"{name}: {c} client(s), {duration}s")
        before = {"loadavg_before": loadavg(), "busy_cores_before": busy_cores()}
        row["concurrency"][str(c)] = {**concurrent(url, kind, setup, uids, limit, threshold,
                                                   c, duration), **before}
    row["loadavg_after"] = loadavg()
    return row, answers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tier", default="10k", choices=list(perf_data.TIERS))
    p.add_argument("--dims", type=int, default=384, choices=[384, 1536])
    p.add_argument("--index", default="ivfflat,hnsw",
                   help="ANN index methods to measure, comma-separated (ivfflat, hnsw)")
    p.add_argument("--halfvec", action="store_true",
                   help="only the halfvec variants (default: both vector and halfvec)")
    p.add_argument("--precision", default="vector,halfvec",
                   help="vector, halfvec or both (comma-separated)")
    p.add_argument("--methods", default="exact,plan,ann,keyword",
                   help="which methods: exact, plan, ann, keyword")
    p.add_argument("--clients", default="1,2,4,8", help="concurrency levels")
    p.add_argument("--queries", type=int, default=None,
                   help="seekers per single-client pass (default by tier)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds per concurrency level (default 10; tiny 1)")
    p.add_argument("--target", type=float, default=0.95, help="recall@10 target")
    p.add_argument("--margin", type=float, default=0.01,
                   help="the knob is chosen for target + margin on the tuning sample")
    p.add_argument("--untuned", action="store_true",
                   help="no sweep: the knobs a fresh install has (the columns' defaults)")
    p.add_argument("--settings", default=None,
                   help="fixed knob values (probes / ef_search) instead of a sweep, "
                        "e.g. 'ivfflat=20,hnsw=100'")
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--hnsw-ef-construction", type=int, default=64)
    p.add_argument("--no-forced-ann", action="store_true",
                   help="when the planner scans exactly despite an index, do not also measure "
                        "match_jobs walking the index")
    p.add_argument("--nice", type=int, default=0,
                   help="scheduling priority for this run, its clients and the embedded bench "
                        "server (e.g. -10 on a machine shared with other work; needs root)")
    p.add_argument("--reload", action="store_true", help="reload the data even if cached")
    p.add_argument("--keep-server", action="store_true",
                   help="leave the embedded bench server running (default: stop it)")
    p.add_argument("--out", default=None, help="output path prefix (writes .json and .csv)")
    a = p.parse_args(argv)

    t_run = time.perf_counter()
    methods = set(a.methods.split(","))
    index_methods = [m for m in a.index.split(",") if m]
    precisions = ["halfvec"] if a.halfvec else [x for x in a.precision.split(",") if x]
    clients = [int(c) for c in a.clients.split(",") if c]
    n_queries = a.queries or DEFAULT_QUERIES[a.tier]
    duration = a.duration or (1.0 if a.tier == "tiny" else 10.0)
    fixed = dict(kv.split("=") for kv in a.settings.split(",")) if a.settings else {}
    k = limit = 10
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(a.out) if a.out else REPO / "bench" / "results" / f"perf-{a.tier}-{a.dims}-{stamp}"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"tier": a.tier, "dims": a.dims, "started_at": dt.datetime.now().isoformat(),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "loadavg_start": loadavg()},
              "args": vars(a), "methods": [], "sweeps": {}, "index_builds": {}}

    result["code"] = code_version()
    ds = perf_data.dataset(a.tier, a.dims, log=log)
    result["data"] = {**ds.info, **perf_data.neighbour_profile(ds)}
    url, settings = perf_db.database_url(a.tier, a.dims, log=log)
    if a.nice:
        result["nice"] = perf_db.renice(a.nice, log=log)
    result["postgres_settings"] = settings
    info = perf_db.ensure_loaded(url, ds, plan="plan" in methods, reload=a.reload, log=log)
    result["load"] = info
    threshold, thr_info = choose_threshold(ds)
    result["threshold"] = thr_info
    log(f"threshold {threshold}: {thr_info}")

    rng = np.random.default_rng(99)
    uids = [int(u) + 1 for u in rng.choice(len(ds.seekers), min(n_queries, len(ds.seekers)),
                                           replace=False)]
    groups = None
    if a.tier in SMALL_TIERS:
        with jm_db.connect(url, autocommit=True) as c:
            c.execute(UNCONSTRAIN_SQL)
        groups = {"no constraints": [u for u in uids if u % 2 == 0],
                  "constraints": [u for u in uids if u % 2 == 1]}
    n_keyword = min(n_queries, 1000)
    keyword_uids = [perf_db.KEYWORD_USER_BASE + i for i in range(n_keyword)]
    warm = min(len(uids), 100)

    admin = jm_db.connect(url, autocommit=True)
    versions = admin.execute("SELECT version(), (SELECT extversion FROM pg_extension"
                             " WHERE extname = 'vector')").fetchone()
    result["postgres"] = {"version": versions[0], "pgvector": versions[1]}
    admin.execute("UPDATE embedding_models SET similarity_threshold = %s, index_halfvec = false"
                  " WHERE is_active", [threshold])
    window = admin.execute("SELECT count(*) FROM canonical_jobs WHERE posted_date >="
                           " current_date - (SELECT match_window_days FROM jobmatch_settings)"
                           ).fetchone()[0]
    result["window_jobs"] = window
    log(f"{len(ds.jobs)} jobs, {window} in the window; {len(uids)} query seekers")
    warm_relations(admin, ["canonical_jobs", "user_preferences"])

    # exact: the ground truth, and the baseline
    exact_row, exact = measure_method(url, "exact", "match", ["SET jobmatch.exact_search = on"],
                                      uids, limit, threshold, clients, duration, None, k,
                                      min(warm, 20), admin, extra={"path": "exact"},
                                      groups=groups)
    exact_row["recall_at_10"] = 1.0
    result["methods"].append(exact_row)
    semantic = [u for u in uids if any(m == "semantic" for _j, m in exact[u])]
    result["seekers_with_semantic_answer"] = round(len(semantic) / len(uids), 3)

    if "plan" in methods and admin.execute("SELECT to_regclass('plan_jobs') IS NOT NULL"
                                           ).fetchone()[0]:
        warm_relations(admin, ["plan_jobs", "idx_plan_jobs_embedding"])
        row, _ = measure_method(url, "plan (as written)", "plan", [], uids, limit, threshold,
                                clients, duration, exact, k, warm, admin,
                                index_name="idx_plan_jobs_embedding",
                                extra={"index": "ivfflat", "lists": 1000, "setting": "probes=1"})
        result["methods"].append(row)

    if "ann" in methods:
        # the tuning sweep measures match_jobs' nearest-neighbour scan (its pool
        # of candidates, with the seeker's hard filters), as `jobmatch index tune`
        queries = index_tune.queries_for(admin, "job", uids[:TUNE_SAMPLE])
        pool = index_tune.candidate_pool(admin, "job", k)
        model = index_tune._model(admin)
        tune_exact = index_tune.exact_answers(admin, "job", model, queries, pool, threshold)
        result["tune"] = {"sample": len(queries), "pool": pool}
        min_rows = 0 if a.tier == "tiny" else 10_000
        for method in index_methods:
            for precision in precisions:
                halfvec = precision == "halfvec"
                label = f"{method}{' halfvec' if halfvec else ''}"
                built = ensure_index(admin, method, halfvec, a.hnsw_m, a.hnsw_ef_construction,
                                     a.dims, min_rows)
                result["index_builds"][label] = built
                admin.execute("UPDATE embedding_models SET index_method = %s,"
                              " index_halfvec = %s WHERE is_active", [method, halfvec])
                warm_relations(admin, ["canonical_jobs", built["name"]])
                model = index_tune._model(admin)
                knob = "ivfflat_probes" if method == "ivfflat" else "hnsw_ef_search"
                if a.untuned:
                    admin.execute(sql.SQL("UPDATE embedding_models SET {} = DEFAULT"
                                          " WHERE is_active").format(sql.Identifier(knob)))
                    setting = admin.execute(sql.SQL("SELECT {} FROM embedding_models"
                                                    " WHERE is_active").format(
                                                        sql.Identifier(knob))).fetchone()[0]
                    points = []
                elif method in fixed:
                    setting = int(fixed[method])
                    points = []
                else:
                    log(f"{label}: sweeping {knob} on {len(queries)} seekers")
                    grid = index_tune._grid(method, built.get("lists"), None)
                    points = index_tune.sweep(
                        admin, "job", model, method, halfvec, grid, queries, tune_exact, pool,
                        threshold, a.target + a.margin,
                        lists=built.get("lists"))
                    best = index_tune.recommend(points, a.target + a.margin)
                    if best is None:
                        best = max(points, key=lambda pt: pt.recall)
                    setting = best.setting
                result["sweeps"][label] = [vars(pt) for pt in points]
                admin.execute(sql.SQL("UPDATE embedding_models SET {} = %s WHERE is_active")
                              .format(sql.Identifier(knob)), [setting])
                extra = {"index": method, "halfvec": halfvec, "lists": built.get("lists"),
                         "setting": f"{knob.split('_', 1)[1]}={setting}"
                                    + (" (untuned)" if a.untuned else ""),
                         "build_s": built["build_s"], "build_reused": built["reused"]}
                row, _ = measure_method(
                    url, label, "match", [], uids, limit, threshold, clients, duration, exact, k,
                    warm, admin, index_name=built["name"], extra=extra, groups=groups)
                result["methods"].append(row)
                if row["path"] == "exact" and not a.no_forced_ann:
                    # The planner scanned exactly (a window below
                    # exact_scan_max_rows, or a match_jobs without the walk):
                    # what match_jobs does when it walks the index anyway
                    # (enable_sort = off, as it does past exact_scan_max_rows).
                    row, _ = measure_method(
                        url, f"{label} [ann path]", "match", ["SET enable_sort = off"], uids,
                        limit, threshold, clients, duration, exact, k, warm, admin,
                        index_name=built["name"], extra=extra, groups=groups)
                    result["methods"].append(row)

    if "keyword" in methods:
        row, _ = measure_method(url, "keyword fallback", "match", [], keyword_uids, limit,
                                threshold, clients, duration, None, k, min(warm, 5), admin,
                                extra={"path": "gin"})
        result["methods"].append(row)

    result["sizes"] = sizes(admin)
    for row in result["methods"]:
        if row["method"] == "plan (as written)":
            row["index_mb"] = result["sizes"].get("idx_plan_jobs_embedding", {}).get("mb")
        elif row["method"].split(" [")[0] in result["index_builds"]:
            row["index_mb"] = result["index_builds"][row["method"].split(" [")[0]].get("mb")
    admin.close()
    result["machine"]["loadavg_end"] = loadavg()
    result["elapsed_s"] = round(time.perf_counter() - t_run, 1)
    write(result, out)
    print(table(result))
    if not os.environ.get("DATABASE_URL") and not a.keep_server:
        perf_db.stop_embedded()
    return 0


COLUMNS = ["method", "setting", "path", "p50_ms", "p99_ms", "recall_at_10", "qps_1", "qps_2",
           "qps_4", "qps_8", "index_mb", "build_s", "load1", "busy"]


def flat(result: dict) -> list[dict]:
    rows = []
    for r in result["methods"]:
        flatrow = {"tier": result["tier"], "dims": result["dims"], "method": r["method"],
                   "setting": r.get("setting", ""), "path": r.get("path"),
                   "p50_ms": r["single"]["p50_ms"], "p99_ms": r["single"]["p99_ms"],
                   "recall_at_10": r.get("recall_at_10"), "index_mb": r.get("index_mb"),
                   "build_s": r.get("build_s"), "load1": r["loadavg_before"][0],
                   "busy": r["single"].get("busy_cores_before")}
        for c, v in r["concurrency"].items():
            flatrow[f"qps_{c}"] = v["qps"]
            flatrow[f"p99_ms_{c}"] = v["p99_ms"]
        rows.append(flatrow)
    return rows


def table(result: dict) -> str:
    rows = flat(result)
    head = (f"tier {result['tier']} ({result['load']['jobs']} jobs, {result['window_jobs']} in "
            f"the 60-day window), {result['dims']}-d, threshold "
            f"{result['threshold']['threshold']}, load average at start "
            f"{result['machine']['loadavg_start']}")
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in COLUMNS}
    lines = [head, "  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    for r in rows:
        lines.append("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in COLUMNS))
    for r in result["methods"]:
        for name, g in r.get("groups", {}).items():
            lines.append(f"  {r['method']}, seekers with {name}: p50 {g['p50_ms']} ms,"
                         f" p99 {g['p99_ms']} ms, recall@10 {_fmt(g['recall_at_10'])}"
                         f" ({g['queries']} queries)")
    sz = result["sizes"]
    lines.append("sizes (MB): " + ", ".join(
        f"{n} {v['mb']}" + (f" (+toast {v['toast_mb']})" if v.get("toast_mb") else "")
        for n, v in sz.items()))
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def write(result: dict, out: Path) -> None:
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(result, indent=2, default=str))
    rows = flat(result)
    keys = sorted({k for r in rows for k in r}, key=lambda c: (c not in COLUMNS, c))
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["tier", "dims", *[c for c in keys
                                                             if c not in ("tier", "dims")]])
        w.writeheader()
        w.writerows(rows)
    log(f"wrote {json_path} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    sys.exit(main())
