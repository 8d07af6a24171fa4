"""Markdown tables from bench.perf results (for bench/README.md):

    python -m bench.perf_report bench/results/perf-100k-1536.json [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(v, fmt="{:g}"):
    return "-" if v is None else fmt.format(v)


def report(path: Path) -> str:
    r = json.loads(path.read_text())
    lines = [
        f"#### {r['tier']} jobs, {r['dims']}-d ({path.name})",
        "",
        f"{r['load']['jobs']:,} jobs, {r['window_jobs']:,} in the 60-day window; threshold "
        f"{r['threshold']['threshold']} (median seeker: {r['threshold']['candidates_above_median']}"
        f" jobs above it); {r['methods'][0]['single']['queries']} query seekers; "
        f"PostgreSQL {r['postgres']['version'].split()[1]}, pgvector {r['postgres']['pgvector']}; "
        f"code {r.get('code', {}).get('git_head')}"
        + (" + working tree" if r.get("code", {}).get("db_dirty") else "")
        + f"; load average at start {r['machine']['loadavg_start']}, at end "
        f"{r['machine']['loadavg_end']}; {r['elapsed_s'] / 60:.0f} min.",
        "",
        "| method | setting | path | p50 ms | p99 ms | recall@10 | q/s 1 | q/s 2 | q/s 4 | q/s 8 "
        "| p99 ms @4 | index MB | build s | load1 | busy |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for m in r["methods"]:
        c = m["concurrency"]
        lines.append(
            f"| {m['method']} | {m.get('setting') or ''} | {m.get('path') or ''} "
            f"| {_f(m['single']['p50_ms'])} | {_f(m['single']['p99_ms'])} "
            f"| {_f(m.get('recall_at_10'), '{:.3f}')} "
            + " ".join(f"| {_f(c.get(k, {}).get('qps'))}" for k in ("1", "2", "4", "8"))
            + f" | {_f(c.get('4', {}).get('p99_ms'))} | {_f(m.get('index_mb'))} "
            f"| {_f(m.get('build_s'))} | {_f(m['loadavg_before'][0])} "
            f"| {_f(m['single'].get('busy_cores_before'))} |")
    sizes = r["sizes"]
    lines += ["", "Sizes (MB): " + ", ".join(
        f"{n} {v['mb']:g}" + (f" + TOAST {v['toast_mb']:g}" if v.get("toast_mb") else "")
        for n, v in sizes.items() if v["mb"] >= 1 or v.get("toast_mb"))]
    if r.get("sweeps"):
        lines += ["", f"Tuning sweeps (recall@{r.get('tune', {}).get('pool', 10)} of match_jobs'"
                      " candidate pool vs exact, p50 of the scan alone, 200 seekers):", ""]
        for label, pts in r["sweeps"].items():
            lines.append(f"* {label}: " + ", ".join(
                f"{p['setting']} -> {p['recall']:.3f} / {p['p50_ms']:.1f} ms" for p in pts))
    builds = r.get("index_builds", {})
    if builds:
        lines += ["", "Index builds: " + "; ".join(
            f"{k} {v['build_s']:g} s ({v['mb']:g} MB, maintenance_work_mem "
            f"{v.get('maintenance_work_mem')}{', reused' if v.get('reused') else ''})"
            for k, v in builds.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(report(Path(p)) for p in sys.argv[1:]))
