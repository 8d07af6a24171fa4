"""(--profile) py-spy on one zero-latency run: where the worker's main
thread spends its time, by phase, and its busiest functions."""


from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from support.common import log
from support.fake_openai import FakeOpenAI

from .common import API_KEY, BenchDb, REPO, load_jobs, provider_env, r, worker_cmd

# ------------------------------------------------------------------ profile (py-spy)

PHASES = (("claim", ("claim (jobmatch/queue.py",)),
          ("complete", ("complete (jobmatch/queue.py",)),
          ("record_usage", ("record_usage (jobmatch/queue.py",)),
          ("embed", ("embed (jobmatch/openai_embedder.py",)))


def section_profile(bdb: BenchDb, conn, args, results: dict) -> None:
    """py-spy (--idle, all threads) on one extra zero-latency run with the defaults:
    where the main thread's wall time goes, and the busiest functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        results["profile"] = {"error": "py-spy not installed (pip install py-spy)"}
        return
    queued = load_jobs(conn, args.rows)
    raw = Path(tempfile.mkdtemp()) / "worker.raw"
    with FakeOpenAI(api_key=API_KEY, latency=0.0) as provider:
        cmd = [spy, "record", "--idle", "--threads", "--rate", "250", "--format", "raw",
               "--output", str(raw), "--", *worker_cmd("--once")]
        log(f"profile: py-spy on the defaults, {queued} rows")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=provider_env(bdb.url, provider), cwd=REPO,
                              capture_output=True, text=True, timeout=args.timeout)
        wall = time.perf_counter() - t0
    if proc.returncode != 0 or not raw.exists():
        results["profile"] = {"error": proc.stderr[-2000:]}
        return
    threads: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    leaf_busy: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = frames[0]
        threads[thread][stack] += int(count)
    # the main thread is the one that ran Worker._drain
    main = max(threads, key=lambda t: sum(c for s, c in threads[t].items() if "_drain (" in s))
    phases: collections.Counter = collections.Counter()
    total_main = sum(threads[main].values())
    for stack, count in threads[main].items():
        if "_drain (" not in stack:
            phases["start-up/shutdown"] += count
            continue
        for phase, needles in PHASES:
            if any(nd in stack for nd in needles):
                phases[phase] += count
                break
        else:
            phases["other (drain loop)"] += count
    # busiest leaf functions over all threads, idle waits excluded (py-spy marks
    # idle frames only by their function; these are the blocking calls)
    idle = {"wait", "select", "poll", "recv_into", "read", "acquire", "sleep", "readinto",
            "recv", "accept", "_wait_for_tstate_lock", "wait_conn", "_worker"}
    for t, stacks in threads.items():
        for stack, count in stacks.items():
            frames = stack.split(";")
            if len(frames) < 2:
                continue  # a thread with no Python frame
            func = frames[-1].split(" (")[0].rsplit(".", 1)[-1]
            if func not in idle:
                leaf_busy[frames[-1]] += count
    busy_total = sum(leaf_busy.values())
    results["profile"] = {
        "rows": queued, "wall_s_under_py_spy": r(wall), "samples_main_thread": total_main,
        "main_thread_share": {k: r(v / total_main, 3) for k, v in phases.most_common()},
        "top_busy_leaf_functions": [{"function": k, "share_of_busy_samples": r(v / busy_total, 3)}
                                    for k, v in leaf_busy.most_common(15)],
        "raw": str(raw)}
    log("  main thread: " + ", ".join(f"{k} {v / total_main:.0%}" for k, v in phases.most_common()))
