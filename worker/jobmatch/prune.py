"""`jobmatch prune`: jobs older than job_retention_days leave the table
(prune_jobs in db/functions/64_retention.sql), with their queue rows. A dry
run by default; --apply deletes in batches, one transaction each, so the
bot and the worker are never held for long."""

from __future__ import annotations

import sys

import psycopg

from . import db
from .config import env_flag, env_switch


def cmd_prune(args) -> int:
    if args.batch < 1:
        print(f"error: --batch must be at least 1, got {args.batch}", file=sys.stderr)
        return 2
    with psycopg.connect(db.database_url(), autocommit=True) as conn:
        try:
            cutoff, total, queued, _ = conn.execute(
                "SELECT * FROM prune_jobs(false)").fetchone()
        except psycopg.errors.InvalidParameterValue as exc:
            print(f"error: {exc.diag.message_primary}\nhint: {exc.diag.message_hint}",
                  file=sys.stderr)
            return 2
        print(f"jobs posted before {cutoff:%Y-%m-%d}: {total} ({queued} of them queued)")
        if not args.apply:
            print("dry run: nothing deleted (pass --apply to delete them)")
            return 0
        deleted = 0
        while True:
            (n,) = conn.execute("SELECT deleted FROM prune_jobs(true, %s)",
                                [args.batch]).fetchone()
            deleted += n
            if n < args.batch:
                break
        print(f"deleted {deleted} jobs")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("prune", help="delete jobs older than job_retention_days "
                                     "(a dry run unless --apply)")
    env_switch(p, "--apply", "JOBMATCH_PRUNE_APPLY", help="delete them (default: only count)")
    env_flag(p, "--batch", "JOBMATCH_PRUNE_BATCH", 10000, type=int,
             help="jobs deleted per transaction")
    p.set_defaults(func=cmd_prune)
