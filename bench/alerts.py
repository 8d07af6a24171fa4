"""Job alerts at scale (issue #14): match_users and next_job_alerts against
many seekers, one command:

    python -m bench.alerts --seekers 1000000 --dims 1536 [--out bench/results/NAME]

Data: seekers and jobs drawn as bench.perf draws them (bench/perf_data.py:
O*NET phrase mixtures plus noise, 1536-d lifted from the local model's
384-d), generated once and cached (JOBMATCH_BENCH_CACHE). Seekers name a
city (skewed to Lagos) and "Remote", one in five would relocate, each states
a pay floor; jobs have a city, one in five is remote, a pay range. Jobs:
--window-jobs spread over the 60-day window, plus --new-jobs posted in the
last 12 hours that the alert feed has not seen.

Database: a dedicated embedded PostgreSQL 18 + pgvector
(JOBMATCH_BENCH_PGDATA; this bench defaults to its own,
/var/tmp/jobmatch-bench-alerts/pgdata) or DATABASE_URL, database
bench_alerts_<seekers>_<dims>, migrated with `jobmatch migrate`, loaded by
binary COPY once (later runs reuse it). The seekers' index is what
`jobmatch index rebuild --table user` builds (jobmatch_vector_index_ddl('user'): HNSW
on halfvec, m 16, ef_construction 64, for the model's defaults).

Measured:
  * match_users(job, --k) for --queries jobs of the window, one client,
    after a warm-up: p50, p99;
  * recall@k of those answers against the exact search (the same function
    with SET jobmatch.exact_search = on: no index, full precision, same
    filters, threshold, score and floor) on --recall-queries jobs;
  * next_job_alerts(10000) called until it returns nothing, for the
    --new-jobs jobs: total seconds, alerts sent, and the caps checked
    (no seeker over alerts_per_user_per_day, no job over alerts_per_job,
    no pair twice).

The similarity threshold is chosen from the data, as bench.perf does: the
10th percentile over 200 window jobs of their 200th-best seeker similarity.
--margin sets the model's relevance_margin (text-embedding-3-small has none:
no relevance floor, no per-seeker reference search) to measure the floor's
cost."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from jobmatch import db as jm_db
from jobmatch.migrate import migrate
from support.common import log
from support.server import configure_embedded

from . import perf_data, perf_db

REPO = Path(__file__).resolve().parents[1]
DATA_VERSION = 1
SETTINGS = {
    "shared_buffers": "8GB",               # the seekers' index: 3.9 GB at 1M x 1536 halfvec
    "effective_cache_size": "16GB",
    "maintenance_work_mem": "1GB",         # the index build raises it per session
    "max_parallel_maintenance_workers": "1",
    "jit": "off",
    "random_page_cost": "1.1",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "work_mem": "16MB",
}


def default_root() -> Path:
    return Path(os.environ.get("JOBMATCH_ALERTS_BENCH_ROOT", "/var/tmp/jobmatch-bench-alerts"))


# ---------------------------------------------------------------- data

def vectors(name: str, n: int, dims: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, dims) unit float32 vectors (memmap) and their occupation ids,
    drawn like bench.perf's; cached."""
    phrases = perf_data.load_phrases()
    path = perf_data.cache_dir() / "data" / f"alerts-v{DATA_VERSION}-{name}-{n}-{dims}"
    done = path / "done"
    if not done.exists():
        path.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        c = perf_data.centers(phrases, dims)
        scale = perf_data.noise_scale(c)
        rng = np.random.default_rng([perf_data.SEED, DATA_VERSION, n, stream])
        s = perf_data.sample_profiles(phrases, n, rng)
        out = np.lib.format.open_memmap(path / "vectors.npy", mode="w+", dtype=np.float32,
                                        shape=(n, dims))
        chunk = 50_000
        for k, start in enumerate(range(0, n, chunk)):
            sl = slice(start, min(n, start + chunk))
            part = perf_data.Sampled(s.occ[sl], s.title[sl], s.skills[sl], s.weights[sl])
            out[sl] = perf_data.mix(phrases, c, part, np.random.default_rng(
                [perf_data.SEED, DATA_VERSION, n, stream, dims, k]), scale)
        out.flush()
        del out
        np.savez(path / "meta.npz", occ=s.occ, title=s.title, skills=s.skills)
        done.write_text(json.dumps({"seconds": round(time.time() - t0, 1)}))
        log(f"generated {n} {name} vectors ({dims}-d) in {time.time() - t0:.0f}s")
    with np.load(path / "meta.npz") as npz:  # an NpzFile reads the array at every access
        meta = {k: npz[k] for k in npz.files}
    return np.load(path / "vectors.npy", mmap_mode="r"), meta


# ---------------------------------------------------------------- database

def configure(log=log) -> str:
    os.environ["JOBMATCH_PGDATA"] = str(default_root() / "pgdata")
    if os.environ.get("JOBMATCH_BENCH_PGDATA"):
        os.environ["JOBMATCH_PGDATA"] = os.environ["JOBMATCH_BENCH_PGDATA"]
    Path(os.environ["JOBMATCH_PGDATA"]).parent.mkdir(parents=True, exist_ok=True)
    return configure_embedded(SETTINGS, log)


def load(url: str, seekers: np.ndarray, smeta, jobs: np.ndarray, jmeta, window_jobs: int,
         new_jobs: int, dims: int, reload: bool) -> dict:
    key = f"alerts-v{DATA_VERSION}-{len(seekers)}-{window_jobs}-{new_jobs}-{dims}"
    model, provider, _ = perf_db.MODELS[dims]
    with jm_db.connect(url, autocommit=True) as conn:
        info = perf_db.bench_info(conn)
        if info is not None and info.get("dataset") == key and not reload:
            log(f"database already holds {key}; migrating")
            migrate(url, (model, provider, dims))
            return info
        perf_db._reset_schema(conn)
    log(f"migrating and loading {key} ...")
    migrate(url, (model, provider, dims))
    texts = perf_data.load_phrases().texts
    now = dt.datetime.now(dt.timezone.utc)
    rng = np.random.default_rng(11)
    t0 = time.perf_counter()
    with jm_db.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE canonical_jobs DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE user_preferences DISABLE TRIGGER USER")
        conn.execute("SET synchronous_commit = off")
        cols = ("user_id, job_roles, technical_skills, preferred_locations, willing_to_relocate,"
                " salary_min, user_embedding, embedding_model, embedding_version,"
                " embedding_updated_at")
        types = ("int8", "text[]", "text[]", "text[]", "bool", "numeric", "vector", "text",
                 "int4", "timestamptz")
        chunk = 50_000
        for start in range(0, len(seekers), chunk):
            stop = min(len(seekers), start + chunk)
            block = np.asarray(seekers[start:stop])
            with conn.cursor().copy(f"COPY user_preferences ({cols}) FROM STDIN"
                                    " (FORMAT BINARY)") as cp:
                cp.set_types(types)
                for i in range(start, stop):
                    city = perf_db._city(rng)[0]
                    cp.write_row((i + 1, [texts[int(smeta["title"][i])]],
                                  [texts[int(s)] for s in smeta["skills"][i]], [city, "Remote"],
                                  bool(rng.random() < 0.2), int(rng.integers(10, 60)) * 100_000,
                                  block[i - start], model, 1, now))
            log(f"  seekers {stop}/{len(seekers)} ({time.perf_counter() - t0:.0f}s)")
        jcols = ("id, title, company, location, posted_date, ai_city, ai_state, ai_country,"
                 " ai_work_arrangement, ai_remote_allowed, ai_required_skills,"
                 " ai_preferred_skills, ai_salary_min, ai_salary_max, ai_salary_currency,"
                 " job_embedding, job_embedding_model, embedding_version,"
                 " job_embedding_updated_at")
        jtypes = ("int8", "text", "text", "text", "timestamptz", "text", "text", "text", "text",
                  "bool", "text[]", "text[]", "numeric", "numeric", "text", "vector", "text",
                  "int4", "timestamptz")
        n_jobs = window_jobs + new_jobs
        with conn.cursor().copy(f"COPY canonical_jobs ({jcols}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(jtypes)
            for i in range(n_jobs):
                # window jobs: 1 to 59 days old; new jobs: the last 12 hours
                age = (rng.uniform(1, 59) if i < window_jobs else rng.uniform(0, 0.5))
                city, state = perf_db._city(rng)
                remote = bool(rng.random() < 0.2)
                low = int(rng.integers(10, 80)) * 100_000
                skills = [texts[int(s)] for s in jmeta["skills"][i]]
                cp.write_row((i + 1, texts[int(jmeta["title"][i])],
                              f"Employer {int(rng.integers(5000))}", f"{city}, {state}",
                              now - dt.timedelta(days=float(age)), city, state, "Nigeria",
                              "Remote" if remote else "On-site", remote, skills[:1], skills[1:],
                              low, low * 2, "NGN", jobs[i], model, 1, now))
        conn.execute("ALTER TABLE canonical_jobs ENABLE TRIGGER USER")
        conn.execute("ALTER TABLE user_preferences ENABLE TRIGGER USER")
        conn.execute("SELECT setval(pg_get_serial_sequence('canonical_jobs', 'id'),"
                     " (SELECT max(id) FROM canonical_jobs))")
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) canonical_jobs")
        conn.execute("VACUUM (ANALYZE) user_preferences")
        info = {"dataset": key, "loaded_at": now.isoformat(), "seekers": len(seekers),
                "window_jobs": window_jobs, "new_jobs": new_jobs, "dims": dims,
                "load_s": round(load_s, 1), "vacuum_s": round(time.perf_counter() - t1, 1)}
        conn.execute("CHECKPOINT")
        perf_db.set_info(conn, **info)
    log(f"loaded: {json.dumps(info)}")
    return info


def choose_threshold(seekers: np.ndarray, jobs: np.ndarray, window_jobs: int,
                     rank: int = 200, sample: int = 200) -> float:
    """10th percentile over `sample` window jobs of their rank-th best seeker."""
    rng = np.random.default_rng(3)
    q = np.asarray(jobs[rng.choice(window_jobs, sample, replace=False)], dtype=np.float32)
    best = np.full((sample, rank), -2.0, dtype=np.float32)
    for start in range(0, len(seekers), 100_000):
        sims = q @ np.asarray(seekers[start:start + 100_000]).T
        both = np.concatenate([best, sims], axis=1)
        best = -np.sort(-both, axis=1)[:, :rank]
    return float(np.percentile(best[:, rank - 1], 10))


def build_user_index(conn, info: dict, method: str) -> dict:
    """What `jobmatch index rebuild --table user --method METHOD` builds
    (halfvec; here in place, not concurrently: nothing else runs), unless
    this load already has it."""
    built = info.get("user_index")
    exists = conn.execute("SELECT to_regclass('user_preferences_user_embedding_ann')"
                          " IS NOT NULL").fetchone()[0]
    if built and exists and built.get("method") == method:
        log(f"user index already built: {built}")
        return built
    conn.execute("SET maintenance_work_mem = '6GB'")
    conn.execute("SET max_parallel_maintenance_workers = 1")
    log(f"building the seekers' index (jobmatch_vector_index_ddl('user'), {method}) ...")
    t0 = time.perf_counter()
    row = conn.execute("SELECT * FROM jobmatch_build_vector_index('user', NULL, 0, %s, true)",
                       [method]).fetchone()
    seconds = time.perf_counter() - t0
    size = conn.execute("SELECT pg_relation_size('user_preferences_user_embedding_ann')"
                        ).fetchone()[0]
    built = {"name": row[0], "method": row[1], "lists": row[2], "rows": row[3],
             "build_s": round(seconds, 1), "size_mb": round(size / 2**20, 1)}
    conn.execute("ANALYZE user_preferences")
    perf_db.set_info(conn, user_index=built)
    log(f"built {built}")
    return built


# ---------------------------------------------------------------- measures

def time_match_users(conn, job_ids: list[int], k: int) -> tuple[list[float], dict]:
    times, answers = [], {}
    for jid in job_ids:
        t0 = time.perf_counter()
        rows = conn.execute("SELECT user_id FROM match_users(%s, %s)", [jid, k],
                            prepare=True).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        answers[jid] = [r[0] for r in rows]
    return times, answers


def exact_answers(conn, job_ids: list[int], k: int) -> tuple[dict, list[float]]:
    out, times = {}, []
    conn.execute("SET jobmatch.exact_search = on")
    try:
        for n, jid in enumerate(job_ids):
            t0 = time.perf_counter()
            out[jid] = [r[0] for r in conn.execute("SELECT user_id FROM match_users(%s, %s)",
                                                   [jid, k]).fetchall()]
            times.append(time.perf_counter() - t0)
            if n % 10 == 9:
                log(f"  exact {n + 1}/{len(job_ids)} ({np.mean(times):.1f}s each)")
    finally:
        conn.execute("RESET jobmatch.exact_search")
    return out, times


def busy_cores(seconds: float = 1.0) -> float | None:
    """Cores other work keeps busy while the benchmark idles (bench.perf's measure)."""
    from .perf import busy_cores as measure

    return measure(seconds)


def run_alerts(conn, new_jobs: int, window_jobs: int) -> dict:
    """Resets the feed to 'every window job dealt with, the new ones not',
    then calls next_job_alerts(10000) until it returns nothing."""
    conn.execute("TRUNCATE job_alerts, alerted_jobs")
    conn.execute("INSERT INTO alerted_jobs (job_id) SELECT id FROM canonical_jobs"
                 " WHERE id <= %s", [window_jobs])
    conn.execute("VACUUM ANALYZE alerted_jobs")
    calls, total = [], 0
    t0 = time.perf_counter()
    while True:
        c0 = time.perf_counter()
        n = conn.execute("SELECT count(*) FROM next_job_alerts(10000)").fetchone()[0]
        calls.append({"alerts": n, "s": round(time.perf_counter() - c0, 2)})
        log(f"  next_job_alerts(10000): {n} alerts in {calls[-1]['s']}s")
        total += n
        if n == 0:
            break
    seconds = time.perf_counter() - t0
    caps = conn.execute("SELECT alerts_per_user_per_day, alerts_per_job FROM jobmatch_settings"
                        ).fetchone()
    per_user = conn.execute("SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c"
                            " FROM job_alerts GROUP BY user_id) AS x").fetchone()[0]
    per_job = conn.execute("SELECT min(c), percentile_cont(0.5) WITHIN GROUP (ORDER BY c),"
                           " max(c) FROM (SELECT j.id, count(a.user_id) AS c"
                           " FROM canonical_jobs j LEFT JOIN job_alerts a ON a.job_id = j.id"
                           " WHERE j.id > %s GROUP BY j.id) AS x", [window_jobs]).fetchone()
    pairs = conn.execute("SELECT count(*), count(DISTINCT (job_id, user_id)) FROM job_alerts"
                         ).fetchone()
    done = conn.execute("SELECT count(*) FROM alerted_jobs WHERE job_id > %s",
                        [window_jobs]).fetchone()[0]
    return {"jobs": new_jobs, "seconds": round(seconds, 1), "alerts": total, "calls": calls,
            "max_alerts_per_seeker": per_user, "cap_per_seeker": caps[0],
            "alerts_per_job_min_median_max": [per_job[0], float(per_job[1]), per_job[2]],
            "cap_per_job": caps[1], "pairs": pairs[0], "distinct_pairs": pairs[1],
            "jobs_dealt_with": done,
            "ok": per_user <= caps[0] and per_job[2] <= caps[1] and pairs[0] == pairs[1]
            and done == new_jobs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seekers", type=int, default=1_000_000)
    p.add_argument("--dims", type=int, default=1536, choices=[384, 1536])
    p.add_argument("--window-jobs", type=int, default=20_000)
    p.add_argument("--new-jobs", type=int, default=1000)
    p.add_argument("--queries", type=int, default=300, help="jobs timed with match_users")
    p.add_argument("--recall-queries", type=int, default=50,
                   help="jobs whose answers are compared with the exact search")
    p.add_argument("--k", type=int, default=50, help="match_users' limit; recall@k")
    p.add_argument("--method", default="ivfflat", choices=["ivfflat", "hnsw"],
                   help="the seekers' index (HNSW m 16, ef_construction 64 left some clusters"
                        " unreachable at 1M x 1536-d: recall@50 0.22 for one job in 20)")
    p.add_argument("--margin", type=float, default=None,
                   help="set embedding_models.relevance_margin (default: the model's)")
    p.add_argument("--skip-alerts", action="store_true")
    p.add_argument("--reload", action="store_true")
    p.add_argument("--nice", type=int, default=None)
    p.add_argument("--keep-server", action="store_true")
    p.add_argument("--out", default=None, help="write PREFIX.json")
    a = p.parse_args(argv)
    started = time.time()
    os.environ.setdefault("JOBMATCH_BENCH_CACHE", str(default_root() / "cache"))
    seekers, smeta = vectors("seekers", a.seekers, a.dims, 12)
    jobs, jmeta = vectors("jobs", a.window_jobs + a.new_jobs, a.dims, 13)
    if os.environ.get("DATABASE_URL"):
        url = os.environ["DATABASE_URL"]
    else:
        configure()
        url = jm_db.embedded_url(f"bench_alerts_{a.seekers}_{a.dims}")
    info = load(url, seekers, smeta, jobs, jmeta, a.window_jobs, a.new_jobs, a.dims, a.reload)
    if a.nice is not None:
        perf_db.renice(a.nice, log)
    result: dict = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                    "load": info, "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    with jm_db.connect(url, autocommit=True) as conn:
        result["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
        result["pgvector"] = conn.execute("SELECT extversion FROM pg_extension"
                                          " WHERE extname = 'vector'").fetchone()[0]
        if "threshold" not in info:
            info["threshold"] = round(choose_threshold(seekers, jobs, a.window_jobs), 4)
            perf_db.set_info(conn, threshold=info["threshold"])
        conn.execute("UPDATE embedding_models SET similarity_threshold = %s WHERE is_active",
                     [info["threshold"]])
        if a.margin is not None:
            conn.execute("UPDATE embedding_models SET relevance_margin = %s WHERE is_active",
                         [a.margin])
        result["model"] = conn.execute(
            "SELECT model, similarity_threshold, relevance_margin, index_method, index_halfvec,"
            " hnsw_ef_search, ivfflat_probes FROM embedding_models WHERE is_active").fetchone()
        result["user_index"] = build_user_index(conn, info, a.method)
        # The working set in memory, as a database server sized for it has:
        # the index, and the seekers' rows with their vectors (TOAST), which
        # the distances are computed from.
        log("pre-reading the seekers' index and rows ...")
        perf_db.preread(perf_db.relation_files(conn, ["user_preferences_user_embedding_ann",
                                                      "user_preferences", "user_preferences_pkey"]))
        rng = np.random.default_rng(5)
        query_jobs = [int(x) + 1 for x in rng.choice(a.window_jobs, a.queries, replace=False)]
        log(f"match_users(job, {a.k}): warm-up, then {a.queries} jobs ...")
        time_match_users(conn, query_jobs[:50], a.k)
        ms, answers = time_match_users(conn, query_jobs, a.k)
        result["match_users"] = {
            "k": a.k, "queries": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "mean_ms": round(float(np.mean(ms)), 2),
            "median_rows": float(np.median([len(v) for v in answers.values()]))}
        log(f"match_users: {result['match_users']}")
        ms100, _ = time_match_users(conn, query_jobs, 100)
        result["match_users_100"] = {"p50_ms": round(float(np.percentile(ms100, 50)), 2),
                                     "p99_ms": round(float(np.percentile(ms100, 99)), 2)}
        result["busy_cores"] = busy_cores()
        if not a.skip_alerts:
            log(f"next_job_alerts for {a.new_jobs} new jobs ...")
            result["alerts"] = run_alerts(conn, a.new_jobs, a.window_jobs)
            log(f"alerts: {json.dumps({k: v for k, v in result['alerts'].items() if k != 'calls'})}")
        # last: every exact search reads all the seekers' vectors, which
        # pushes the working set out of memory
        recall_jobs = query_jobs[:a.recall_queries]
        log(f"exact answers for {len(recall_jobs)} jobs (a scan of every seeker each) ...")
        exact, exact_s = exact_answers(conn, recall_jobs, a.k)
        recalls = [len(set(answers[j]) & set(exact[j])) / len(exact[j])
                   for j in recall_jobs if exact[j]]
        result["recall"] = {"k": a.k, "jobs": len(recalls),
                            "mean": round(float(np.mean(recalls)), 4) if recalls else None,
                            "min": round(float(np.min(recalls)), 4) if recalls else None,
                            "exact_p50_s": round(float(np.median(exact_s)), 2)
                            if exact_s else None}
        log(f"recall: {result['recall']}")
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["minutes"] = round((time.time() - started) / 60, 1)
    print(report(result))
    if a.out:
        Path(a.out + ".json").parent.mkdir(parents=True, exist_ok=True)
        Path(a.out + ".json").write_text(json.dumps(result, indent=2, default=str))
    if not a.keep_server and not os.environ.get("DATABASE_URL"):
        jm_db.stop_embedded()
    return 0


def report(r: dict) -> str:
    mu, rc = r["match_users"], r["recall"]
    lines = [
        f"seekers {r['load']['seekers']:,} x {r['load']['dims']}-d, window jobs "
        f"{r['load']['window_jobs']:,} (+{r['load']['new_jobs']:,} new); PostgreSQL "
        f"{r['postgres']}, pgvector {r['pgvector']}; model {r['model'][0]}, threshold "
        f"{r['model'][1]}, relevance_margin {r['model'][2]}; load average "
        f"{r['loadavg_start']} -> {r['loadavg_end']}, other work busy {r.get('busy_cores')} "
        f"cores; {r['minutes']} min",
        f"seekers' index: {r['user_index']}",
        f"match_users(job, {mu['k']}): p50 {mu['p50_ms']} ms, p99 {mu['p99_ms']} ms "
        f"({mu['queries']} jobs, median {mu['median_rows']:.0f} rows); limit 100: p50 "
        f"{r['match_users_100']['p50_ms']} ms, p99 {r['match_users_100']['p99_ms']} ms",
        f"recall@{rc['k']} vs exact: mean {rc['mean']}, min {rc['min']} over {rc['jobs']} jobs"
        f" (exact search p50 {rc['exact_p50_s']} s)",
    ]
    if "alerts" in r:
        al = r["alerts"]
        lines.append(
            f"next_job_alerts: {al['jobs']} new jobs -> {al['alerts']:,} alerts in "
            f"{al['seconds']} s ({len(al['calls'])} calls); per job min/median/max "
            f"{al['alerts_per_job_min_median_max']} (cap {al['cap_per_job']}), max per seeker "
            f"{al['max_alerts_per_seeker']} (cap {al['cap_per_seeker']}), pairs "
            f"{al['pairs']:,} distinct {al['distinct_pairs']:,}; checks "
            f"{'pass' if al['ok'] else 'FAIL'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
