"""match_jobs on two (or more) databases holding the same data, interleaved:

    python -m bench.match_ab URL_A,URL_B [--rounds 2] [--limit 10]

For every seeker with a vector (read from the first database), one call of
`match_jobs(uid, limit)` on each database in turn, so both see the same load
from the rest of the machine; prints per database the wall-clock p50/p90/p99
and the server process's CPU time per call (utime + stime from
/proc/<backend pid>/stat: the server must run on this machine), which other
work on a busy machine disturbs far less than wall-clock time. A way to
compare two versions of the functions: copy the database (CREATE DATABASE b
TEMPLATE a), apply the other version's db/functions to the copy."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import psycopg

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.match_ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("urls", help="comma-separated database URLs")
    p.add_argument("--rounds", type=int, default=2, help="calls per seeker and database")
    p.add_argument("--limit", type=int, default=10)
    a = p.parse_args(argv)
    urls = a.urls.split(",")
    conns = [psycopg.connect(u, autocommit=True) for u in urls]
    pids = [c.execute("SELECT pg_backend_pid()").fetchone()[0] for c in conns]
    uids = [r[0] for r in conns[0].execute(
        "SELECT user_id FROM user_preferences WHERE user_embedding IS NOT NULL ORDER BY user_id")]
    sql = "SELECT * FROM match_jobs(%s, %s)"
    for c in conns:  # warm up: caches, plans
        for uid in uids[:20]:
            c.execute(sql, [uid, a.limit], prepare=True).fetchall()
    times = [[] for _ in conns]
    cpu0 = [cpu_seconds(pid) for pid in pids]
    load = os.getloadavg()
    for _ in range(a.rounds):
        for uid in uids:
            for i, c in enumerate(conns):
                t0 = time.perf_counter()
                c.execute(sql, [uid, a.limit], prepare=True).fetchall()
                times[i].append((time.perf_counter() - t0) * 1000)
    cpu = [cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0)]
    print(f"{len(uids)} seekers x {a.rounds} rounds, load average before {load[0]:.2f}")
    for url, ts, spent in zip(urls, times, cpu):
        ts.sort()
        print(f"{url}: p50 {statistics.median(ts):.2f} ms, p90 {ts[int(0.9 * len(ts))]:.2f},"
              f" p99 {ts[int(0.99 * len(ts))]:.2f}; server CPU {1000 * spent / len(ts):.2f}"
              f" ms a call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
