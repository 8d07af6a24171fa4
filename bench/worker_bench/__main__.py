"""`python -m bench.worker_bench`: see the package's docstring."""


from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path


from support.common import loadavg, log

from . import __doc__ as PACKAGE_DOC
from .common import (DIMS, MODEL, REPO, BenchDb, EmbeddingCache, ensure_source, job_texts,
                     load_jobs, r)
from .freshness import section_freshness
from .pyspy import section_profile
from .report import evaluate, flatten, table
from .throughput import section_worker
from .write_path import section_write_path

# ------------------------------------------------------------------ main

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.worker_bench", description=PACKAGE_DOC.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=None,
                   help="jobs per zero-latency worker run (default 20000; --quick 300)")
    p.add_argument("--bulk-rows", type=int, default=None, help="jobs per bulk load (default 100000)")
    p.add_argument("--quick", action="store_true",
                   help="a small, fast run of every section (smoke test; timings meaningless)")
    p.add_argument("--latency", type=float, default=0.2, help="slow provider's seconds per request")
    p.add_argument("--concurrency", default=None, help="sweep, e.g. 1,2,4,8,16")
    p.add_argument("--request-sizes", default=None, help="sweep request sizes, e.g. 100,2048")
    p.add_argument("--plan-rows", type=int, default=None, help="rows the plan's loop embeds (default 100)")
    p.add_argument("--fresh-updates", type=int, default=None, help="preference updates (default 50)")
    p.add_argument("--repeats", type=int, default=None, help="bulk loads per variant (default 3)")
    p.add_argument("--sweep-repeats", type=int, default=None,
                   help="runs of each latency-sweep configuration (default 2; medians are reported)")
    p.add_argument("--sections", default="worker,freshness,write_path",
                   help="comma list of worker, freshness, write_path")
    p.add_argument("--profile", action="store_true", help="also py-spy one zero-latency run")
    p.add_argument("--out", default=None, help="output path without extension"
                   " (default bench/results/worker-YYYYMMDD-HHMMSS)")
    p.add_argument("--reset", action="store_true",
                   help="allow wiping jobs/seekers in DATABASE_URL that the benchmark did not load")
    p.add_argument("--keep-server", action="store_true", help="leave the embedded bench server running")
    p.add_argument("--timeout", type=float, default=None, help="seconds per worker run before giving up")
    args = p.parse_args(argv)
    q = args.quick
    args.rows = args.rows or (300 if q else 20_000)
    args.bulk_rows = args.bulk_rows or (2_000 if q else 100_000)
    args.plan_rows = args.plan_rows or (6 if q else 100)
    args.fresh_updates = args.fresh_updates or (5 if q else 50)
    args.repeats = args.repeats or (1 if q else 3)
    args.timeout = args.timeout or (120.0 if q else 900.0)
    conc = [int(x) for x in (args.concurrency or ("1,4" if q else "1,2,4,8,16")).split(",")]
    sizes = [int(x) for x in (args.request_sizes or ("100" if q else "100,2048")).split(",")]
    args.sweep = [(c, sizes[0]) for c in conc]
    for rs in sizes[1:]:  # larger requests: the low concurrencies (a batch of 16 x 2048 is the table)
        args.sweep += [(c, rs) for c in conc if c * rs <= max(args.rows // 2, rs)][:2]
    if q:
        args.latency = min(args.latency, 0.05)
    args.min_sweep_rows = min(args.rows, 100 if q else 1000)
    args.sweep_repeats = args.sweep_repeats or (1 if q else 2)
    args.sweep_seconds = 8.0
    args.zero_configs = [("defaults", [], 1, False)]
    if not q:  # the defaults three times, between the others: the machine is shared
        args.zero_configs += [("batch 2048, request 512", ["--batch-size", 2048, "--request-size", 512], 1, False),
                              ("defaults", [], 1, False),
                              ("two workers", [], 2, False),
                              ("defaults", [], 1, False),
                              ("defaults + ivfflat index", [], 1, True)]
    args.fresh_jobs = min(args.rows, 300 if q else 5_000)
    args.fresh_seekers = max(args.fresh_updates, 20 if q else 200)
    args.fresh_latencies = [0.0] if q else [0.0, args.latency]
    args.fresh_gap = 0.05 if q else 0.15
    args.single_updates = 50 if q else 1000
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("bench.plan").disabled = True
    started = dt.datetime.now(dt.timezone.utc)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"worker-{stamp}"
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict = {"meta": {
        "command": "python -m bench.worker_bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": started.isoformat(timespec="seconds"), "quick": args.quick,
        "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "loadavg_start": loadavg(), "model": MODEL, "dimensions": DIMS, "rows": args.rows,
        "bulk_rows": args.bulk_rows, "slow_provider_latency_s": args.latency}}
    bdb = BenchDb(args)
    cache = EmbeddingCache()
    t_start = time.perf_counter()
    try:
        bdb.prepare()
        results["meta"]["database"] = bdb.info()
        with bdb.connect() as conn, cache.installed():
            need = max(args.rows, args.bulk_rows if "write_path" in args.sections else 0)
            gen = ensure_source(conn, need)
            if gen:
                log(f"  staged in {gen:.1f}s")
            # warm the fake provider's cache with every job text it will be asked for
            load_jobs(conn, args.rows)
            cache.warm(job_texts(conn))
            if "worker" in args.sections:
                section_worker(bdb, conn, cache, args, results)
            if args.profile:
                section_profile(bdb, conn, args, results)
            if "freshness" in args.sections:
                section_freshness(bdb, conn, cache, args, results)
            if "write_path" in args.sections:
                section_write_path(bdb, conn, args, results)
    finally:
        results["meta"]["loadavg_end"] = loadavg()
        results["meta"]["duration_s"] = r(time.perf_counter() - t_start, 1)
        results["goals"] = evaluate(results)
        out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        with out.with_suffix(".csv").open("w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=["metric", "value"])
            wr.writeheader()
            wr.writerows(flatten(results))
        bdb.close()
    print(table(results))
    print(f"\nload average at start {results['meta']['loadavg_start']}, end {results['meta']['loadavg_end']}"
          f" ({os.cpu_count()} CPUs); {results['meta']['duration_s']} s")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
