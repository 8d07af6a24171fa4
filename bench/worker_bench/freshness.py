"""Freshness: from a seeker's edit to the new vector, and to match_jobs
answering with it, under a long-running `jobmatch worker`."""


from __future__ import annotations

import os
import random
import signal
import time

from psycopg import sql

from jobmatch.demo_data import SEEKER_COLUMNS, generate_seekers
from support.common import log
from support.fake_openai import FakeOpenAI
from support.worker import parse_events

from .common import (API_KEY, SEED, BenchDb, EmbeddingCache, load_jobs, pct, Proc, provider_env, r,
                     worker_cmd)

def section_freshness(bdb: BenchDb, conn, cache: EmbeddingCache, args, results: dict) -> None:
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
    fresh_sql = ("SELECT embedding_hash IS NOT DISTINCT FROM"
                 "       jobmatch_text_hash(jobmatch_user_profile_text(u))"
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
