"""The write path: bulk loads and single-row updates with the triggers
on and off (what queueing costs the application)."""


from __future__ import annotations

import random
import statistics
import time

from psycopg import sql

from support.common import log

from .common import BenchDb, JOB_COLS_SQL, SEED, checkpoint, pct, proc_cpu, r

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
            # ai_job_function is part of jobmatch_job_profile_text, not of the keyword
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
