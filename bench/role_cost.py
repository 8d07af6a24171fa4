"""python -m bench.role_cost: what the role vectors cost match_jobs.

The role term adds, per call, the role vectors of the candidates (at most
2 x match_candidates rows, already read for the profile-vector ranking) and
one exact cosine each; the index scan is unchanged. This measures match_jobs
on one database three ways, same seekers, same index:

  no role data   role columns NULL (as before role vectors; loaded first)
  role data      the same rows with role vectors, the shipped weight
  role data, 0   the same, rank_role_weight = 0 (alternating with the above)

Synthetic clustered vectors (no model, no download): JOBS jobs in the
window, DIMS dimensions, the default index (hnsw halfvec). It runs in a
database of its own (jobmatch_role_cost) on the DATABASE_URL server or the
embedded one, dropped and recreated each run.

    .venv/bin/python -m bench.role_cost --jobs 50000 --dims 1536 --queries 300
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import psycopg

from jobmatch import db as jm_db
from jobmatch.migrate import migrate

from .quality.load_data import fresh_database


def clustered(rng, n: int, centers: np.ndarray, spread: float) -> np.ndarray:
    v = centers[rng.integers(0, len(centers), n)] + spread * rng.standard_normal(
        (n, centers.shape[1])).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def load(conn, jobs: int, seekers: int, dims: int, roles: bool, seed: int = 7) -> None:
    """The same jobs and seekers for a seed; role vectors only if `roles`."""
    conn.execute("TRUNCATE canonical_jobs, user_preferences RESTART IDENTITY")
    conn.execute("DROP INDEX IF EXISTS canonical_jobs_job_embedding_ann")
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((200, dims)).astype(np.float32)
    role_centers = rng.standard_normal((200, dims)).astype(np.float32)
    conn.execute("ALTER TABLE canonical_jobs DISABLE TRIGGER USER")
    conn.execute("ALTER TABLE user_preferences DISABLE TRIGGER USER")
    model = conn.execute("SELECT model FROM embedding_models WHERE is_active").fetchone()[0]
    chunk = 10_000
    for start in range(0, jobs, chunk):
        n = min(chunk, jobs - start)
        vecs, rvecs = clustered(rng, n, centers, 0.6), clustered(rng, n, role_centers, 0.6)
        with conn.cursor().copy(
                "COPY canonical_jobs (title, ai_required_skills, job_embedding,"
                " job_role_embedding, job_embedding_model) FROM STDIN") as cp:
            for i in range(n):
                cp.write_row([f"Job {start + i}", [f"skill{(start + i) % 500}"], vecs[i],
                              rvecs[i] if roles else None, model])
    vecs, rvecs = clustered(rng, seekers, centers, 0.6), clustered(rng, seekers, role_centers, 0.6)
    with conn.cursor().copy("COPY user_preferences (user_id, job_roles, technical_skills,"
                            " user_embedding, user_role_embedding, embedding_model)"
                            " FROM STDIN") as cp:
        for i in range(seekers):
            cp.write_row([i + 1, [f"Role {i % 50}"], [f"skill{i % 500}"], vecs[i],
                          rvecs[i] if roles else None, model])
    conn.execute("ALTER TABLE canonical_jobs ENABLE TRIGGER USER")
    conn.execute("ALTER TABLE user_preferences ENABLE TRIGGER USER")
    conn.execute("UPDATE canonical_jobs SET posted_date = date_trunc('day', now())"
                 " - (id % 55) * interval '1 day'")
    conn.execute("VACUUM ANALYZE canonical_jobs")
    conn.execute("VACUUM ANALYZE user_preferences")
    conn.execute("SELECT jobmatch_build_vector_index('job')")


def timed(conn, users: list[int], repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        for u in users:
            t = time.perf_counter()
            conn.execute("SELECT * FROM match_jobs(%s, 10)", [u]).fetchall()
            out.append(1000 * (time.perf_counter() - t))
    return out


def summary(ms: list[float]) -> str:
    qs = statistics.quantiles(ms, n=100)
    return f"p50 {statistics.median(ms):6.2f} ms  p99 {qs[98]:6.2f} ms  ({len(ms)} calls)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.role_cost", description=__doc__)
    ap.add_argument("--jobs", type=int, default=50_000)
    ap.add_argument("--dims", type=int, default=1536)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the three ways")
    ap.add_argument("--skip-no-role", action="store_true",
                    help="measure only the two ways with role vectors (one load)")
    args = ap.parse_args(argv)
    url = fresh_database("jobmatch_role_cost")
    migrate(url, ("text-embedding-3-small", "openai", 1536) if args.dims == 1536
            else ("multilingual-e5-small", "local", 384))
    users = list(range(1, args.queries + 1))
    results: dict[str, list[float]] = {}
    with jm_db.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE embedding_models SET similarity_threshold = 0 WHERE is_active")
        (weight,) = conn.execute("SELECT rank_role_weight FROM jobmatch_settings").fetchone()
        for roles in ((True,) if args.skip_no_role else (False, True)):
            started = time.monotonic()
            load(conn, args.jobs, args.queries, args.dims, roles)
            print(f"loaded {args.jobs} jobs x {args.dims}-d and {args.queries} seekers"
                  f" ({'with' if roles else 'without'} role vectors), index built, in"
                  f" {time.monotonic() - started:.0f}s", flush=True)
            timed(conn, users[:50])  # warm-up
            if not roles:
                results["no role data"] = timed(conn, users, args.rounds)
                continue
            results["role data"], results["role data, weight 0"] = [], []
            for _ in range(args.rounds):  # alternating: the machine's load falls on both
                conn.execute("UPDATE jobmatch_settings SET rank_role_weight = %s", [weight])
                results["role data"] += timed(conn, users)
                conn.execute("UPDATE jobmatch_settings SET rank_role_weight = 0")
                results["role data, weight 0"] += timed(conn, users)
            conn.execute("UPDATE jobmatch_settings SET rank_role_weight = %s", [weight])
        (rows,) = conn.execute("SELECT count(*) FROM match_jobs(1, 10)").fetchone()
        plan_path = conn.execute("SELECT jobmatch_vector_index_walk(active_embedding_model(),"
                                 " current_date - 60)").fetchone()[0]
    print(f"match_jobs, {args.queries} seekers x {args.rounds} rounds, weight {weight},"
          f" index walk: {plan_path}, rows per answer: {rows}")
    for name, ms in results.items():
        print(f"  {name:<22} {summary(ms)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
