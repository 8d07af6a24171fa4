"""Load benchmark: the bot and the worker at the same time, one command:

    python -m bench.bot_load [--seconds 60] [--clients 8] [--insert-rate 20]
                         [--jobs 5000] [--seekers 1000] [--json PATH]

On a dedicated embedded PostgreSQL 18 + pgvector (temporary data directory)
or DATABASE_URL's server (a database `jobmatch_load` is created there):
`--jobs` jobs and `--seekers` seekers are loaded and embedded (a `jobmatch
worker --once` against a local FakeOpenAI), then for `--seconds`:

  * `--clients` bot processes, each with its own connection as the
    least-privileged `jobmatch_bot` role, call `match_jobs(random seeker, 10)`
    back to back (client-side latency of every call is kept);
  * a thread inserts new jobs at a steady `--insert-rate` per second (a
    multi-row INSERT every `--insert-every` seconds), which the triggers queue;
  * a long-running `jobmatch worker` (the fake answers each request after
    `--latency` seconds) embeds them as they arrive;
  * the queue depth is sampled every 0.25 s.

Pass: zero errors in the bot calls; the queue depth stays bounded (max
sampled depth <= --depth-bound, by default 5 insert batches) and drains
within 30 s once inserts stop; every inserted job ends with the vector of
its text. Printed: p50/p95/p99/max latency, calls/s, match methods, queue
depth (max, mean, last quarter), embedding lag (insert -> vector), load
average. tests/test_chaos.py runs an 8-second version."""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import psycopg

from .chaos import Result
from support.common import loadavg, log, percentile, wait_for
from support.fake_openai import FakeOpenAI
from support.server import connect, create_database, embedded_server
from support.worker import KEY, WorkerProc, pending

from .harness import USER_BASE, Steady, count, seed, verify

MATCH_SQL = "SELECT job_id, match_method FROM match_jobs(%s, 10)"


def _client(dsn: str, role: str | None, user_ids: list[int], seconds: float, seed_value: int,
            ready, go, out) -> None:
    """One bot: match_jobs back to back for `seconds` after `go` is set."""
    rng = random.Random(seed_value)
    latencies: list[float] = []
    errors: list[str] = []
    methods: collections.Counter = collections.Counter()

    def open_conn():
        c = psycopg.connect(dsn, autocommit=True)
        if role:
            c.execute(f"SET ROLE {role}")
        return c

    conn = open_conn()
    ready.put(os.getpid())
    go.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        uid = rng.choice(user_ids)
        started = time.perf_counter()
        try:
            rows = conn.execute(MATCH_SQL, [uid], prepare=True).fetchall()
        except psycopg.Error as exc:
            errors.append(f"{type(exc).__name__}: {exc}".strip()[:300])
            if conn.closed or conn.broken:
                try:
                    conn = open_conn()
                except psycopg.Error as exc2:
                    errors.append(f"reconnect: {exc2}"[:300])
                    time.sleep(0.1)
            continue
        latencies.append(time.perf_counter() - started)
        methods[rows[0][1] if rows else "no rows"] += 1
    conn.close()
    out.put({"latencies": latencies, "errors": errors, "methods": dict(methods)})


class Inserter(Steady):
    """New jobs at a steady rate: `per_batch` rows every `every` seconds."""

    def __init__(self, dsn: str, first_id: int, rate: float, every: float):
        super().__init__(dsn, every, "inserter")
        self.next_id = first_id
        self.per_batch = max(1, round(rate * every))

    @property
    def inserted(self) -> int:
        return self.done

    def step(self, c) -> None:
        seed(c, self.per_batch, 0, start=self.next_id, new=True)
        self.next_id += self.per_batch
        self.done += self.per_batch


class Sampler(threading.Thread):
    def __init__(self, dsn: str, every: float = 0.25):
        super().__init__(daemon=True, name="queue-sampler")
        self.dsn, self.every = dsn, every
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with connect(self.dsn) as c:
            t0 = time.monotonic()
            while not self._halt.wait(self.every):
                self.samples.append((time.monotonic() - t0, pending(c)))

    def stop(self) -> list[tuple[float, int]]:
        self._halt.set()
        if self.is_alive():
            self.join(30)
        return self.samples


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)


def run_load(dsn: str, workdir: Path, *, seconds: float = 60, clients: int = 8,
             jobs: int = 5000, users: int = 1000, insert_rate: float = 20.0,
             insert_every: float = 0.5, latency: float = 0.1, depth_bound: int | None = None,
             role: str | None = "jobmatch_bot", drain_timeout: float = 30.0) -> Result:
    r = Result("load")
    with connect(dsn) as c:
        seed(c, jobs, users)
        c.execute("SELECT setval(pg_get_serial_sequence('canonical_jobs', 'id'), %s)", [jobs])
    # 1. everything embedded before the clock starts
    fake = FakeOpenAI(api_key=KEY).start()
    t0 = time.monotonic()
    first = WorkerProc(dsn, fake.base_url, ["--once", "--batch-size", 500, "--request-size", 100,
                                            "--concurrency", 4],
                       log_path=workdir / "load-initial.log")
    code = first.wait(600)
    r.metrics["initial_embed"] = f"{jobs + users} rows in {time.monotonic() - t0:.1f} s (exit {code})"
    if not r.check("initial embedding done", code == 0, "" if code == 0 else first.text()[-500:]):
        fake.stop()
        return r
    fake.reset()
    fake.latency = latency

    # 2. the run
    worker = WorkerProc(dsn, fake.base_url, ["--batch-size", 200, "--request-size", 100,
                                             "--concurrency", 2, "--poll-interval", 1],
                        log_path=workdir / "load-worker.log")
    inserter = Inserter(dsn, jobs + 1, insert_rate, insert_every)
    bound = depth_bound if depth_bound is not None else 5 * inserter.per_batch
    sampler = Sampler(dsn)
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    user_ids = list(range(USER_BASE + 1, USER_BASE + users + 1))
    procs = [ctx.Process(target=_client, args=(dsn, role, user_ids, seconds, i, ready, go, out),
                         daemon=True) for i in range(clients)]
    results = []
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=120)
        with connect(dsn) as c:  # the worker is up and idle before the clock starts
            wait_for(lambda: c.execute("SELECT count(*) FROM pg_stat_activity WHERE"
                                       " application_name LIKE 'jobmatch-worker%%'"
                                       " AND datname = current_database()").fetchone()[0] >= 2,
                     60, "the worker's sessions")
        load_start = loadavg()
        sampler.start()
        inserter.start()
        started = time.monotonic()
        go.set()
        results = [out.get(timeout=seconds + 120) for _ in procs]
        elapsed = time.monotonic() - started
        inserted = inserter.stop()
        stopped = time.monotonic()
        with connect(dsn) as c:
            try:
                wait_for(lambda: pending(c) == 0, drain_timeout, "the queue to drain", 0.05)
                drained_after = round(time.monotonic() - stopped, 2)
            except TimeoutError:
                drained_after = None
        samples = sampler.stop()
        worker_code = worker.stop()
        load_end = loadavg()
        with connect(dsn) as c:
            verdict = verify(c)
            lag = c.execute(
                "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY"
                " extract(epoch FROM job_embedding_updated_at - posted_date)),"
                " max(extract(epoch FROM job_embedding_updated_at - posted_date))"
                " FROM canonical_jobs WHERE id > %s", [jobs]).fetchone()
            dead = count(c, "SELECT count(*) FROM embedding_dead_letter")
    finally:
        inserter.stop()
        sampler.stop()
        worker.kill()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        fake.stop()

    latencies = sorted(x for res in results for x in res["latencies"])
    errors = [e for res in results for e in res["errors"]]
    methods = collections.Counter()
    for res in results:
        methods.update(res["methods"])
    depths = [d for _, d in samples]
    tail = [d for t, d in samples if t >= 0.75 * elapsed]
    r.metrics.update(
        seconds=round(elapsed, 1), clients=clients, calls=len(latencies),
        calls_per_s=round(len(latencies) / elapsed, 1), errors=len(errors),
        p50_ms=_ms(percentile(latencies, 50)), p95_ms=_ms(percentile(latencies, 95)),
        p99_ms=_ms(percentile(latencies, 99)), max_ms=_ms(max(latencies, default=None)),
        match_methods=dict(methods), jobs_at_start=jobs, seekers=users,
        inserted=inserted, insert_rate=insert_rate, insert_batch=inserter.per_batch,
        depth_max=max(depths, default=None), depth_mean=round(sum(depths) / len(depths), 1)
        if depths else None, depth_max_last_quarter=max(tail, default=None),
        depth_bound=bound, depth_samples=len(depths), drained_after_stop_s=drained_after,
        embed_lag_p50_s=None if lag[0] is None else round(lag[0][0], 2),
        embed_lag_p99_s=None if lag[0] is None else round(lag[0][1], 2),
        embed_lag_max_s=None if lag[1] is None else round(float(lag[1]), 2),
        provider_requests=len(fake.requests), loadavg_start=load_start, loadavg_end=load_end,
        cpus=os.cpu_count())
    r.check("zero errors in bot calls", not errors and len(results) == clients,
            f"{len(errors)} errors, e.g. {errors[:3]}; {len(results)}/{clients} clients reported")
    r.check("bot calls were made", len(latencies) > 0, f"{len(latencies)} calls")
    r.check("inserts kept their rate", not inserter.errors and
            inserted >= 0.8 * insert_rate * elapsed,
            f"{inserted} jobs in {elapsed:.1f} s, errors {inserter.errors[:2]}")
    r.check("queue depth bounded", depths and max(depths) <= bound,
            f"max {max(depths, default=None)} <= {bound} ({len(depths)} samples)")
    r.check("queue drained after inserts stopped", drained_after is not None,
            f"drained in {drained_after} s (limit {drain_timeout} s)")
    r.check("every job and seeker has the vector of its current text", verdict.ok and dead == 0,
            f"{verdict.summary()}, {dead} dead letters")
    r.check("worker stopped cleanly (exit 0)", worker_code == 0, f"exit {worker_code}")
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bot_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--seekers", type=int, default=1000)
    p.add_argument("--insert-rate", type=float, default=20.0, help="new jobs per second")
    p.add_argument("--insert-every", type=float, default=0.5, help="seconds between INSERTs")
    p.add_argument("--latency", type=float, default=0.1, help="fake provider seconds per request")
    p.add_argument("--depth-bound", type=int, help="max queue depth (default 5 insert batches)")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    log(f"load average at start {loadavg()}")
    workdir = Path(tempfile.mkdtemp(prefix="jobmatch-load-logs-"))
    kwargs = dict(seconds=args.seconds, clients=args.clients, jobs=args.jobs, users=args.seekers,
                  insert_rate=args.insert_rate, insert_every=args.insert_every,
                  latency=args.latency, depth_bound=args.depth_bound)
    if os.environ.get("DATABASE_URL"):
        res = run_load(create_database(os.environ["DATABASE_URL"], "jobmatch_load"), workdir,
                       **kwargs)
    else:
        with embedded_server() as server:
            res = run_load(create_database(server.get_uri(), "jobmatch_load"), workdir, **kwargs)
    from .chaos import print_summary

    print_summary([res], res.metrics.get("seconds") or 0)
    print(f"worker logs: {workdir}")
    if args.json:
        args.json.write_text(json.dumps(asdict(res) | {"passed": res.passed}, indent=2, default=str))
    return 0 if res.passed else 1


if __name__ == "__main__":
    sys.exit(main())
