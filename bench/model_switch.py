"""python -m bench.model_switch: a blue/green model switch on the demo data.

The demo's jobs and seekers are embedded with the bundled local model
(multilingual-e5-small), then a target model is added and filled through the
real target queue (claim, embed, hash-checked write-back), its index built,
and promoted. There is one local model, so the target is the same model
under another name (`multilingual-e5-small@switch`): the figures are the
switch's mechanics with the real model's cost per text, not a comparison of
two models. Printed: the time to fill the target and the coverage over that
time, whether every seeker kept the same answers while the switch ran, and
the promotion's time. It runs in a database of its own (jobmatch_model_switch)
on the DATABASE_URL server or the embedded one, dropped and recreated.

    .venv/bin/python -m bench.model_switch --jobs 400 --seekers 40
"""

from __future__ import annotations

import argparse
import time

from jobmatch import db as jm_db
from jobmatch import queue
from jobmatch.batch import DrainStats, embed_batch
from jobmatch.demo import load_and_embed
from jobmatch.demo_data import generate_jobs, generate_seekers
from jobmatch.embedders import LocalEmbedder
from jobmatch.vector_index import rebuild

from .quality.load_data import prepare_database

TARGET = "multilingual-e5-small@switch"


class Renamed:
    """The local model under the target's name (the switch needs two names)."""

    def __init__(self, inner, model: str):
        self.inner, self.model = inner, model
        self.provider, self.dimensions = inner.provider, inner.dimensions

    def embed(self, items):
        return self.inner.embed(items)


def answers(conn, seekers: list[int]) -> dict:
    return {u: conn.execute("SELECT job_id, match_method FROM match_jobs(%s, 10)", [u]).fetchall()
            for u in seekers}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=400)
    p.add_argument("--seekers", type=int, default=40)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()

    url = prepare_database(None, dbname="jobmatch_model_switch")
    with jm_db.connect(url, autocommit=True) as conn:
        jobs = generate_jobs(args.jobs, seed=args.seed, days=75)
        seekers = generate_seekers(args.seekers, seed=args.seed + 1)
        started = time.monotonic()
        _, stats, local = load_and_embed(conn, jobs, seekers)
        print(f"active model filled: {stats.written} rows in {time.monotonic() - started:.1f}s")
        ids = [r[0] for r in conn.execute("SELECT user_id FROM user_preferences ORDER BY 1")]
        before = answers(conn, ids)

        started = time.monotonic()
        (queued,) = conn.execute("SELECT add_embedding_model(%s, 'local', 384)",
                                 [TARGET]).fetchone()
        print(f"model add: {queued} rows queued for {TARGET} in"
              f" {1000 * (time.monotonic() - started):.0f} ms")
        # The same model under another name: it gets the old one's constants
        # (threshold, relevance margin, role units, index knobs), so the
        # answers after the swap can be compared with the answers before.
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name ="
            " 'embedding_models' AND column_name NOT IN ('model', 'provider', 'dimensions',"
            " 'is_active', 'is_target', 'created_at')")]
        conn.execute(f"UPDATE embedding_models AS t SET ({', '.join(cols)}) = (SELECT"
                     f" {', '.join('a.' + c for c in cols)} FROM embedding_models AS a"
                     " WHERE a.is_active) WHERE t.model = %s", [TARGET])
        target = Renamed(local, TARGET)
        fill = DrainStats()
        started = time.monotonic()
        marks = []
        changed = 0
        while batch := queue.claim_target(conn, "bench", args.batch):
            fill.claimed += len(batch)
            for part in embed_batch(conn, target, "bench", batch, fill, fail=queue.fail_target):
                fill.written += queue.complete_target(conn, "bench", TARGET, part.batch,
                                                      part.vectors, part.role_vectors)
            marks.append((time.monotonic() - started, *map(float, conn.execute(
                "SELECT job_pct, user_pct, coverage_pct FROM embedding_model_coverage"
                " WHERE model = %s", [TARGET]).fetchone())))
            # mid-switch: every seeker still gets the old model's answers
            changed += sum(1 for u, rows in answers(conn, ids[:10]).items() if rows != before[u])
        fill_s = time.monotonic() - started
        (cov,) = conn.execute("SELECT coverage_pct FROM embedding_model_coverage"
                              " WHERE model = %s", [TARGET]).fetchone()
        print(f"target filled: {fill.written} rows written ({fill.claimed} embedded, the"
              f" rest copied or skipped) in {fill_s:.1f}s; coverage {cov}%")
        for at in (0.25, 0.5, 0.75, 1.0):
            t, jobs, users, low = min(marks, key=lambda m: abs(m[0] - at * fill_s))
            print(f"  at {t:5.1f}s: jobs {jobs:.1f}%, seekers {users:.1f}% covered"
                  f" (promotable at {low:.1f}%)")
        print(f"seekers whose answers changed during the switch (10 checked after each batch):"
              f" {changed}")
        semantic = sum(1 for rows in before.values() for _, m in rows if m == "semantic")
        print(f"semantic rows served during the switch: {semantic} over {len(ids)} seekers")

        started = time.monotonic()
        built = rebuild(conn, "job", model=TARGET)
        print(f"target index {built['index']} ({built['method']}) built in"
              f" {time.monotonic() - started:.2f}s over {built['rows']} vectors")
        started = time.monotonic()
        (moved,) = conn.execute("SELECT promote_embedding_model(%s)", [TARGET]).fetchone()
        promote_ms = 1000 * (time.monotonic() - started)
        after = answers(conn, ids)
        same = sum(1 for u in ids if after[u] == before[u])
        print(f"promote: {moved} rows swapped in {promote_ms:.0f} ms (one transaction);"
              f" {same}/{len(ids)} seekers get the same answers (same model under another"
              " name: expected all)")
        started = time.monotonic()
        (removed,) = conn.execute("SELECT drop_embedding_model(%s)",
                                  ["multilingual-e5-small"]).fetchone()
        print(f"drop old: {removed} vectors removed in {1000 * (time.monotonic() - started):.0f} ms")


if __name__ == "__main__":
    main()
