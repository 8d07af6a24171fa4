"""Freshness over streaming replication: from a vector written on the primary
to the standby's match_jobs answer reflecting it.

    .venv/bin/python -m bench.replica_lag [--edits 100] [--jobs 2000] [--json]

Starts a throwaway primary (initdb) and a hot standby (pg_basebackup -R) from
the embedded binaries in a temporary directory, migrates the primary (local
model, 384-d), loads --jobs jobs with vectors and one seeker per edit, then
makes --edits edits through the queue API, the worker's write path, half of
each kind:

- job:    a new job is inserted and its vector written (complete_embeddings),
          the vector of a waiting seeker: it becomes that seeker's top match;
- seeker: a seeker's preferences change and their new vector is written, the
          vector of an existing job: that job becomes their top match.

The clock starts when the write-back commits on the primary and stops when
`match_jobs(seeker, 1)` on the standby, as the bot's login role, first returns
the expected job (polled back to back; one poll's cost is printed as well).
Also printed: the time until pg_last_wal_replay_lsn() on the standby passes
the primary's LSN after the commit, measured in a separate pass.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg

from jobmatch import db as jm_db
from jobmatch import queue
from jobmatch import standby as sb
from jobmatch.migrate import migrate
from support.common import percentile

MODEL = ("multilingual-e5-small", "local", 384)
BOT = "replica_lag_bot"


def unit_vectors(rng, n: int, dims: int = 384) -> np.ndarray:
    v = rng.standard_normal((n, dims)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def drain(conn, vector_for) -> None:
    while rows := queue.claim(conn, "bench", 1000):
        queue.complete(conn, "bench", MODEL[0], rows, [vector_for(r) for r in rows])


def load(p, rng, jobs: int, seekers: int) -> tuple[np.ndarray, np.ndarray]:
    """`jobs` jobs with random vectors and `seekers` seekers (ids 1..n) with
    their own random vectors; no job is near any seeker (random 384-d unit
    vectors are ~0 apart, far below the 0.82 threshold)."""
    job_vecs = unit_vectors(rng, jobs)
    seeker_vecs = unit_vectors(rng, seekers)
    p.execute("INSERT INTO canonical_jobs (title, company) SELECT 'Job ' || g, 'Co ' || g"
              " FROM generate_series(1, %s) g", [jobs])
    p.execute("INSERT INTO user_preferences (user_id, job_roles)"
              " SELECT g, ARRAY['Role ' || g] FROM generate_series(1, %s) g", [seekers])
    drain(p, lambda r: job_vecs[r.entity_id - 1] if r.entity_type == "job"
          else seeker_vecs[r.entity_id - 1])
    return job_vecs, seeker_vecs


def write_vector(p, kind: str, entity_id: int, vec: np.ndarray) -> None:
    """The worker's write-back for one queued row, committed when it returns."""
    (row,) = [r for r in queue.claim(p, "bench", 10)
              if (r.entity_type, r.entity_id) == (kind, entity_id)]
    assert queue.complete(p, "bench", MODEL[0], [row], [vec]) == 1


def measure(edits: int, jobs: int, workdir: Path) -> dict:
    rng = np.random.default_rng(16)
    primary = standby = None
    try:
        primary = sb.init_primary(workdir / "primary")
        with psycopg.connect(primary.url(), autocommit=True) as c:
            c.execute("CREATE DATABASE jobmatch")
        migrate(primary.url("jobmatch"), MODEL)
        with jm_db.connect(primary.url("jobmatch"), autocommit=True) as p:
            p.execute(f"CREATE ROLE {BOT} LOGIN IN ROLE jobmatch_bot")
            job_vecs, seeker_vecs = load(p, rng, jobs, edits)
            p.execute("ANALYZE")
            standby = sb.init_standby(primary.url("jobmatch"), workdir / "standby")
            with jm_db.connect(standby.url("jobmatch", user=BOT), autocommit=True) as s, \
                    jm_db.connect(standby.url("jobmatch"), autocommit=True) as s_admin:
                sb.wait_for_replay(p, s_admin)
                lags = {"job": [], "seeker": []}
                polls = []
                for i in range(edits):
                    seeker = i + 1
                    if i % 2 == 0:  # a new job, the vector of a waiting seeker
                        kind = "job"
                        expected = p.execute(
                            "INSERT INTO canonical_jobs (title, company) VALUES (%s, 'New')"
                            " RETURNING id", [f"New job {i}"]).fetchone()[0]
                        write_vector(p, "job", expected, seeker_vecs[i])
                    else:  # a seeker's new preferences, the vector of job k
                        kind = "seeker"
                        expected = int(rng.integers(1, jobs + 1))
                        p.execute("UPDATE user_preferences SET job_roles = %s WHERE user_id = %s",
                                  [[f"Changed role {i}"], seeker])
                        write_vector(p, "user", seeker, job_vecs[expected - 1])
                    t0 = time.perf_counter()
                    while True:
                        t = time.perf_counter()
                        top = s.execute("SELECT job_id, match_method FROM match_jobs(%s, 1)",
                                        [seeker]).fetchone()
                        polls.append(time.perf_counter() - t)
                        if top == (expected, "semantic"):
                            break
                        if t - t0 > 30:
                            raise TimeoutError(f"edit {i} not visible on the standby after 30 s")
                    lags[kind].append(time.perf_counter() - t0)
                # replay alone: commit -> pg_last_wal_replay_lsn() passes it
                replay = []
                for i in range(edits):
                    p.execute("UPDATE canonical_jobs SET company = %s WHERE id = %s",
                              [f"Co {i}b", i + 1])
                    t0 = time.perf_counter()
                    lsn = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
                    while not s_admin.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                              [lsn]).fetchone()[0]:
                        pass
                    replay.append(time.perf_counter() - t0)
    finally:
        for server in (standby, primary):
            if server is not None:
                server.stop("fast")
    both = lags["job"] + lags["seeker"]

    def ms(values):
        return {"n": len(values), "p50_ms": round(1000 * percentile(values, 50), 2),
                "p99_ms": round(1000 * percentile(values, 99), 2),
                "max_ms": round(1000 * max(values), 2),
                "mean_ms": round(1000 * statistics.fmean(values), 2)}

    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_1m": round(os.getloadavg()[0], 1), "jobs": jobs, "edits": edits,
            "edit_to_standby_match": ms(both), "job_edits": ms(lags["job"]),
            "seeker_edits": ms(lags["seeker"]), "commit_to_replay": ms(replay),
            "one_standby_match_jobs_call": ms(polls)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replica_lag", description=__doc__.split("\n\n")[0])
    p.add_argument("--edits", type=int, default=100, help="edits to time (half jobs, half seekers)")
    p.add_argument("--jobs", type=int, default=2000, help="jobs loaded before the standby starts")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jobmatch-replica-lag-") as tmp:
        result = measure(args.edits, args.jobs, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['date']}: {args.edits} edits, {args.jobs} jobs, primary + hot standby on"
          " one machine (unix sockets, asynchronous streaming replication),"
          f" load average {result['load_average_1m']}")
    print(f"{'':34}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for key, label in [("edit_to_standby_match", "edit -> standby match_jobs"),
                       ("job_edits", "  new job"), ("seeker_edits", "  seeker's new vector"),
                       ("commit_to_replay", "commit -> replayed (LSN)"),
                       ("one_standby_match_jobs_call", "one match_jobs call (a poll)")]:
        r = result[key]
        print(f"{label:34}{r['n']:>5}{r['p50_ms']:>10}{r['p99_ms']:>10}{r['max_ms']:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
