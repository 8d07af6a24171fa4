"""python -m bench.pay_once: what a backfill sends to the provider, against
what a naive one would (every row, every time).

Rows come from the demo's generator (worker/jobmatch/demo_data.py: Nigerian
postings of a few dozen role families, seekers of every kind, some with
nothing stated), loaded by COPY so the triggers queue them as an application's
inserts would, then the queue is drained through the product's own batch code
(claim, the content cache, embed, hash-checked write-back) with a counting
stand-in for the provider (fake vectors of text-embedding-3-small@256: the
price and the ledger are the real model's). Printed: rows loaded, rows the
triggers queued (the window rule leaves out jobs too old to be matched),
inputs the provider was sent, inputs the content cache answered (a text
already embedded: duplicate postings, repeated profiles), rows with nothing
to embed, and the ledger's tokens and dollars beside a naive backfill's.

    .venv/bin/python -m bench.pay_once --jobs 100000 --seekers 20000 --days 360
    .venv/bin/python -m bench.pay_once --jobs 400 --seekers 40 --days 75   # the demo's data

A database of its own (jobmatch_pay_once) on the DATABASE_URL server or the
embedded one, dropped and recreated."""

from __future__ import annotations

import argparse
import time

import numpy as np

from jobmatch import db as jm_db
from jobmatch.batch import drain
from jobmatch.demo import _copy
from jobmatch.demo_data import JOB_COLUMNS, SEEKER_COLUMNS, generate_jobs, generate_seekers
from jobmatch.embedders import Embedded, estimate_tokens
from jobmatch.migrate import migrate
from support.common import log
from support.fake_openai import fake_embedding
from support.worker import DIMS, MODEL, MODEL_SPEC

from .quality.load_data import fresh_database


class CountingProvider:
    """text-embedding-3-small@256 as far as the database knows; counts what
    it is sent."""
    provider, model, dimensions = "openai", MODEL, DIMS

    def __init__(self):
        self.inputs = self.tokens = self.requests = 0

    def embed(self, items):
        self.inputs += len(items)
        self.requests += 1
        tokens = sum(estimate_tokens(it.text) for it in items)
        self.tokens += tokens
        return Embedded(np.stack([fake_embedding(it.text, DIMS) for it in items]),
                        tokens=tokens, requests=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pay_once", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--seekers", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=360,
                    help="jobs are posted over this many days before today")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    url = fresh_database("jobmatch_pay_once")
    migrate(url, MODEL_SPEC)
    jobs = generate_jobs(args.jobs, seed=args.seed, days=args.days)
    seekers = generate_seekers(args.seekers, seed=args.seed + 1)
    provider = CountingProvider()
    with jm_db.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        _copy(conn, "canonical_jobs", JOB_COLUMNS, jobs)
        _copy(conn, "user_preferences", SEEKER_COLUMNS, seekers)
        (window_days,) = conn.execute(
            "SELECT match_window_days FROM jobmatch_settings").fetchone()
        in_window, queued_jobs = conn.execute(
            "SELECT count(*) FILTER (WHERE posted_date >= current_date - %s),"
            " (SELECT count(*) FROM embedding_queue WHERE entity_type = 'job')"
            " FROM canonical_jobs", [window_days]).fetchone()
        (queued_users,) = conn.execute(
            "SELECT count(*) FROM embedding_queue WHERE entity_type = 'user'").fetchone()
        log(f"loaded {len(jobs)} jobs ({in_window} in the window) and {len(seekers)} seekers"
            f" in {time.monotonic() - started:.0f}s; queued {queued_jobs} jobs, {queued_users}"
            " seekers")
        started = time.monotonic()
        stats = drain(conn, provider, "pay-once", batch_size=500)
        drained = time.monotonic() - started
        ledger = conn.execute(
            "SELECT sum(inputs), sum(tokens), sum(cached_inputs), sum(cached_tokens),"
            " sum(skipped_inputs), sum(usd), sum(usd_saved) FROM embedding_spend").fetchone()
        (price,) = conn.execute("SELECT usd_per_million_tokens FROM embedding_models"
                                " WHERE model = %s", [MODEL]).fetchone()
        # a naive backfill: every row's texts (profile and role), every row
        naive = [t for (t,) in conn.execute(
            "SELECT x FROM canonical_jobs AS j, LATERAL (VALUES (jobmatch_job_profile_text(j)),"
            " (jobmatch_job_role_text(j))) AS v (x) UNION ALL"
            " SELECT x FROM user_preferences AS u, LATERAL (VALUES"
            " (jobmatch_user_profile_text(u)), (jobmatch_user_role_text(u))) AS v (x)"
            ).fetchall() if t]
        naive_tokens = sum(estimate_tokens(t) for t in naive)
    inputs, tokens, cached, cached_tokens, skipped, usd, usd_saved = ledger
    rows = len(jobs) + len(seekers)
    naive_usd = naive_tokens * float(price or 0) / 1e6
    print(f"\n{len(jobs)} jobs posted over {args.days} days ({in_window} in the {window_days}-day"
          f" window), {len(seekers)} seekers; drained in {drained:.0f}s ({stats.written} rows"
          " written)")
    print(f"rows loaded {rows}, queued by the triggers {queued_jobs + queued_users}; at the"
          " claim a row too old to be matched or with nothing to embed is skipped, a text"
          " already embedded reuses its vector")
    print(f"{'texts (profile and role)':<40} {'inputs':>9} {'of naive':>9}")
    for name, n in (("a naive backfill: every row's texts", len(naive)),
                    ("sent to the provider", provider.inputs),
                    ("answered by the content cache", cached),
                    ("rows not embedded (too old, empty)", skipped)):
        print(f"{name:<40} {n:>9} {100 * n / max(len(naive), 1):>8.1f}%")
    print(f"tokens: {tokens} sent, {cached_tokens} reused (estimated); naive backfill"
          f" ~{naive_tokens}")
    print(f"cost at {price} $/1M tokens: ${float(usd or 0):.4f} (ledger), saved"
          f" ${float(usd_saved or 0):.4f}; naive ~${naive_usd:.4f}")
    assert provider.inputs == inputs, (provider.inputs, inputs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
