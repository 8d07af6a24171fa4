"""`jobmatch demo`: the whole pipeline on the embedded database with the
bundled model: generated jobs and seekers in, triggers queue them, the queue
is drained into vectors, match_jobs answers."""

from __future__ import annotations

import os
import sys
import time

from . import db, queue
from .alerts import print_demo_alerts
from .demo_data import JOB_COLUMNS, SEEKER_COLUMNS, generate_jobs, generate_seekers
from .batch import DrainStats, drain
from .embedders import LocalEmbedder
from .migrate import migrate


class Progress:
    """A progress bar on a terminal; a line every 10% elsewhere (CI logs)."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream = max(total, 1), stream
        self.start = time.monotonic()
        self.tty = stream.isatty()
        self.last_decile = -1

    def __call__(self, stats: DrainStats) -> None:
        done = stats.claimed
        rate = done / max(time.monotonic() - self.start, 1e-9)
        eta = (self.total - done) / rate if rate else 0
        if self.tty:
            filled = int(30 * done / self.total)
            self.stream.write(f"\r  embedding [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{done}/{self.total}  {rate:.0f} rows/s  ETA {eta:.0f}s ")
            self.stream.flush()
        elif (decile := 10 * done // self.total) != self.last_decile:
            self.last_decile = decile
            print(f"  embedding {done}/{self.total} ({rate:.0f} rows/s)", file=self.stream)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _copy(conn, table: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


# Demo jobs are posted over the last DEMO_DAYS days, so most fall in
# match_jobs' 60-day window and every family has jobs to show with few rows
# to embed (the demo must finish in about a minute on 2 cores).
DEMO_DAYS = 75


def load_and_embed(conn, jobs: list[dict], seekers: list[dict], progress=None):
    """Loads demo rows (the triggers queue them) and drains the queue with
    the local model. Returns (rows queued, DrainStats, embedder)."""
    _copy(conn, "canonical_jobs", JOB_COLUMNS, jobs)
    _copy(conn, "user_preferences", SEEKER_COLUMNS, seekers)
    pending = queue.pending(conn)
    embedder = LocalEmbedder()
    if progress is not None:
        progress = progress(pending)
    stats = drain(conn, embedder, f"demo-{os.getpid()}", batch_size=64, progress=progress)
    if progress is not None:
        progress.finish()
    return pending, stats, embedder


def _print_matches(conn, user_id: int, limit: int = 5) -> None:
    profile = conn.execute("SELECT jobmatch_user_profile_text(u) FROM user_preferences u"
                           " WHERE user_id = %s", [user_id]).fetchone()[0]
    print(f"\nSeeker {user_id}: {profile[:160]}{'...' if len(profile) > 160 else ''}")
    rows = conn.execute("SELECT title, company, location, match_score, match_method,"
                        " match_reasons FROM match_jobs(%s, %s)", [user_id, limit]).fetchall()
    if not rows:
        print("  (no relevant job in the last 60 days fits what they asked for, or misses by only"
              " one constraint: nothing is offered rather than unrelated jobs)")
    for title, company, location, score, method, reasons in rows:
        print(f"  {score:5.1f}  {title} at {company} ({location or 'location n/a'}) [{method}]")
        if reasons:
            print(f"         {'; '.join(reasons)}")


def run_demo(args) -> int:
    external = bool(os.environ.get("DATABASE_URL"))
    url = db.database_url()
    print(f"database: {'DATABASE_URL' if external else 'embedded PostgreSQL in ' + str(db.pgdata_dir())}")
    result = migrate(url, ("multilingual-e5-small", "local", 384))
    print(f"schema: migrations {', '.join(result['migrations']) or 'up to date'}; "
          f"model {result['model'][0]} ({result['model'][2]}-d)")
    with db.connect(url, autocommit=True) as conn:
        existing = conn.execute("SELECT (SELECT count(*) FROM canonical_jobs)"
                                " + (SELECT count(*) FROM user_preferences)").fetchone()[0]
        if existing and external and not args.reset:
            print("error: this database already has jobs or seekers; the demo would replace "
                  "them. Pass --reset (JOBMATCH_DEMO_RESET=1) to do so.", file=sys.stderr)
            return 2
        if existing:
            conn.execute("TRUNCATE canonical_jobs, user_preferences, job_alerts, alerted_jobs"
                         " RESTART IDENTITY")

        started = time.monotonic()
        jobs = generate_jobs(args.jobs, seed=args.seed, days=DEMO_DAYS)
        seekers = generate_seekers(args.seekers, seed=args.seed + 1)
        saved = "SELECT coalesce(sum(cached_inputs + skipped_inputs), 0) FROM embedding_usage"
        saved_before = conn.execute(saved).fetchone()[0]
        pending, stats, embedder = load_and_embed(conn, jobs, seekers, Progress)
        print(f"loaded {len(jobs)} jobs and {len(seekers)} seekers; "
              f"the triggers queued {pending} rows")
        elapsed = time.monotonic() - started
        not_paid = conn.execute(saved).fetchone()[0] - saved_before
        print(f"embedded {stats.written} rows in {elapsed:.1f}s "
              f"({stats.written / max(elapsed, 1e-9):.0f} rows/s, local {embedder.model}); "
              f"{not_paid} needed no embedding (jobs too old to match, duplicate texts)")

        shown = conn.execute(
            "SELECT user_id FROM user_preferences WHERE cardinality(job_roles) > 0"
            " AND cardinality(technical_skills) > 0 ORDER BY user_id LIMIT %s",
            [args.show]).fetchall()
        for (user_id,) in shown:
            _print_matches(conn, user_id)
        print_demo_alerts(conn)

        h = conn.execute("SELECT user_coverage_pct, job_coverage_pct, queue_depth, status"
                         " FROM embedding_health").fetchone()
        print(f"\nhealth: users {h[0]}% / jobs {h[1]}% embedded, queue {h[2]}, {h[3]}")
        print("next: `jobmatch match USER_ID`, `jobmatch match-users JOB_ID`, `jobmatch alerts`,"
              " `jobmatch health`, `jobmatch db down`")
    return 0
