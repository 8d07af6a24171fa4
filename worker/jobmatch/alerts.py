"""Job alerts from the command line (issue #14): `jobmatch alerts` prints what
next_job_alerts would push (a dry run: the call is rolled back, nothing is
marked sent) or, with --send, marks it sent; `jobmatch match-users JOB_ID`
prints the seekers a job fits. The rules live in SQL
(db/functions/48_match_users.sql, 49_alerts.sql); this only calls them."""

from __future__ import annotations

import json
import sys

import psycopg

from . import db
from .config import env_flag, env_switch

BAD_INPUT = (psycopg.errors.InvalidParameterValue, psycopg.errors.NullValueNotAllowed)


def _rows(cur) -> list[dict]:
    names = [c.name for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def next_alerts(conn, limit: int, send: bool) -> list[dict]:
    """next_job_alerts(limit) in a transaction of its own: committed with
    send, rolled back (a dry run) without. conn must be in autocommit."""
    with conn.transaction(force_rollback=not send):
        return _rows(conn.execute("SELECT * FROM next_job_alerts(%s)", [limit]))


def _line(row: dict) -> str:
    return (f"job {row['job_id']} -> seeker {row['user_id']}: {row['match_score']:5.1f}  "
            f"{'; '.join(row['match_reasons'] or [])}")


def cmd_alerts(args) -> int:
    with db.connect(autocommit=True) as conn:
        try:
            rows = next_alerts(conn, args.limit, args.send)
        except BAD_INPUT as exc:
            print(f"error: {exc.diag.message_primary}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for row in rows:
        print(_line(row))
    jobs = len({r["job_id"] for r in rows})
    if args.send:
        print(f"{len(rows)} alerts for {jobs} jobs marked sent")
    else:
        print(f"{len(rows)} alerts for {jobs} jobs would be sent (dry run: nothing marked; "
              "--send marks them)")
    return 0


def cmd_match_users(args) -> int:
    with db.connect() as conn:
        try:
            rows = _rows(conn.execute("SELECT * FROM match_users(%s, %s)",
                                      [args.job_id, args.limit]))
        except BAD_INPUT as exc:
            print(f"error: {exc.diag.message_primary}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    for row in rows:
        print(f"seeker {row['user_id']}: {row['match_score']:5.1f}  "
              f"{'; '.join(row['match_reasons'] or [])}")
    if not rows:
        print("(no rows)")
    return 0


def add_parsers(sub) -> None:
    """The two subcommands, for cli.py's parser."""
    p = sub.add_parser("alerts", help="print the job alerts next_job_alerts would push "
                                      "(dry run); --send marks them sent")
    env_flag(p, "--limit", "JOBMATCH_ALERTS_LIMIT", 1000, type=int,
             help="at most this many alerts (next_job_alerts caps it at 10,000)")
    env_switch(p, "--send", "JOBMATCH_ALERTS_SEND",
               help="mark the alerts sent (without it nothing changes)")
    env_switch(p, "--json", "JOBMATCH_JSON", help="print JSON")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("match-users", help="print what match_users returns for a job")
    p.add_argument("job_id", type=int)
    env_flag(p, "--limit", "JOBMATCH_MATCH_LIMIT", 100, type=int, help="how many seekers")
    env_switch(p, "--json", "JOBMATCH_JSON", help="print JSON")
    p.set_defaults(func=cmd_match_users)


def print_demo_alerts(conn, jobs: int = 5, per_job: int = 3) -> None:
    """The demo's last part: what the alert feed would push for the newest
    jobs (a dry run), a few seekers per job."""
    rows = next_alerts(conn, 1000, send=False)
    print(f"\nAlerts the newest jobs would send (next_job_alerts, dry run): {len(rows)} alerts"
          f" for {len({r['job_id'] for r in rows})} jobs posted in the last"
          f" {conn.execute('SELECT alerts_max_age_days FROM jobmatch_settings').fetchone()[0]}"
          " days")
    by_job: dict[int, list[dict]] = {}
    for row in rows:
        by_job.setdefault(row["job_id"], []).append(row)
    for job_id in list(by_job)[:jobs]:
        title, company, city = conn.execute(
            "SELECT title, company, coalesce(ai_city, location) FROM canonical_jobs"
            " WHERE id = %s", [job_id]).fetchone()
        seekers = by_job[job_id]
        print(f"  job {job_id}: {title} at {company} ({city or 'location n/a'}) -> "
              f"{len(seekers)} seeker{'s' if len(seekers) != 1 else ''}")
        for row in seekers[:per_job]:
            print(f"    seeker {row['user_id']}: {row['match_score']:5.1f}  "
                  f"{'; '.join(row['match_reasons'] or [])}")
