"""python -m bench.quality: build the ESCO data set, load it, embed it through
the queue, run every matcher for every seeker, score, print, write JSON."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from jobmatch import db as jm_db
from support.common import log

from . import dataset as ds
from . import metrics as m
from .esco import REPO_ROOT, default_path, load_esco
from .load_data import BENCH_DBNAME, default_cache, embed_all, load, prepare_database
from .matchers import BASELINES, LIMIT, Matcher
from .prototype import PROTOTYPES

ALL_MATCHERS = {mt.name: mt for mt in (*BASELINES, *PROTOTYPES)}
DEFAULT_MATCHERS = tuple(ALL_MATCHERS)
BOOTSTRAP = 1000
# What a job in an answer is, for the "where does it lose" breakdown.
KINDS = ("relevant", "same_occ_violating", "sibling", "cousin", "unrelated", "stale")


@dataclass
class Truth:
    """One seeker's judgements of every job."""
    gains: dict[int, int]       # job id -> grade after zeroing (only > 0)
    kinds: dict[int, str]       # job id -> KINDS entry (absent: unrelated)
    n_relevant: int
    all_gains: list[int]


def judge(data: ds.Dataset) -> dict[int, Truth]:
    truth = {}
    for s in data.seekers:
        gains, kinds, all_gains = {}, {}, []
        for p in data.postings:
            base = m.base_grade(s.occupation, s.isco, p.occupation, p.isco)
            if not p.in_window:
                kinds[p.id] = "stale"
                continue
            violated = m.violations(s.row, p.row) if base else []
            g = m.grade(base, p.in_window, violated)
            if g:
                gains[p.id] = g
                all_gains.append(g)
            if base == 3:
                kinds[p.id] = "same_occ_violating" if violated else "relevant"
            elif base:
                kinds[p.id] = "sibling" if base == 2 else "cousin"
        truth[s.user_id] = Truth(gains, kinds, sum(1 for g in gains.values() if g == 3), all_gains)
    return truth


def score(answer: Sequence[int], t: Truth) -> dict:
    gains = [t.gains.get(j, 0) for j in answer]
    rel = [g == 3 for g in gains]
    return {"ndcg": m.ndcg(gains, t.all_gains), "p": m.precision(rel) if t.n_relevant else None,
            "r": m.recall(rel, t.n_relevant), "empty": not answer,
            "kinds": [t.kinds.get(j, "unrelated") for j in answer[:LIMIT]]}


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def _ci(xs: list[float], rng: np.random.Generator) -> list[float] | None:
    if len(xs) < 2:
        return None
    arr = np.asarray(xs, dtype=float)
    means = arr[rng.integers(0, len(arr), (BOOTSTRAP, len(arr)))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def evaluate(conn, data: ds.Dataset, matchers: Sequence[Matcher], seed: int = 0) -> dict:
    truth = judge(data)
    users = [s.user_id for s in data.seekers]
    # warm-up: plans cached, pages in memory
    for mt in matchers:
        for uid in users[:3]:
            conn.execute(mt.sql, {"user_id": uid}).fetchall()
    per: dict[str, dict[int, dict]] = {mt.name: {} for mt in matchers}
    latency: dict[str, list[float]] = {mt.name: [] for mt in matchers}
    answers: dict[str, dict[int, list[int]]] = {mt.name: {} for mt in matchers}
    for i, uid in enumerate(users):
        for mt in matchers[i % len(matchers):] + matchers[:i % len(matchers)]:
            started = time.perf_counter()
            ids = [row[0] for row in conn.execute(mt.sql, {"user_id": uid}).fetchall()]
            latency[mt.name].append((time.perf_counter() - started) * 1000)
            answers[mt.name][uid] = ids
            per[mt.name][uid] = score(ids, truth[uid])

    with_rel = [u for u in users if truth[u].n_relevant]
    rng = np.random.default_rng(seed)
    results = {}
    for mt in matchers:
        rows = per[mt.name]
        ndcgs = [rows[u]["ndcg"] for u in users if rows[u]["ndcg"] is not None]
        kinds = {k: _mean([rows[u]["kinds"].count(k) for u in users]) for k in KINDS}
        results[mt.name] = {
            "description": mt.description,
            "ndcg@10": _mean(ndcgs), "ndcg@10_ci95": _ci(ndcgs, rng),
            "p@10": _mean(rows[u]["p"] for u in with_rel),
            "r@10": _mean(rows[u]["r"] for u in with_rel),
            "empty_share": _mean(float(rows[u]["empty"]) for u in with_rel),
            "empty_share_all": _mean(float(rows[u]["empty"]) for u in users),
            "mean_answer_len": _mean(len(answers[mt.name][u]) for u in users),
            "latency_ms_p50": m.percentile(latency[mt.name], 50),
            "latency_ms_p95": m.percentile(latency[mt.name], 95),
            "top10_composition": kinds,
        }
    # paired differences in nDCG@10, with a bootstrap interval
    paired = {}
    names = [mt.name for mt in matchers]
    for a in names:
        for b in ("plan", "keyword"):
            if a != b and b in names:
                diffs = [per[a][u]["ndcg"] - per[b][u]["ndcg"] for u in users
                         if per[a][u]["ndcg"] is not None]
                paired[f"{a}-{b}"] = {"ndcg@10": _mean(diffs), "ci95": _ci(diffs, rng)}
    ceiling = _mean(min(LIMIT, truth[u].n_relevant) / LIMIT for u in with_rel)
    return {
        "seekers": len(users), "seekers_with_relevant": len(with_rel),
        "seekers_with_ndcg": sum(1 for u in users if truth[u].all_gains),
        "mean_relevant_per_seeker": _mean(truth[u].n_relevant for u in users),
        "p@10_ceiling": ceiling,
        "matchers": results, "paired_ndcg": paired,
        "per_seeker": {name: {str(u): {"answer": answers[name][u],
                                       "ndcg": per[name][u]["ndcg"]} for u in users}
                       for name in names},
    }


def table(report: dict) -> str:
    ev = report["evaluation"]
    head = (f"{'matcher':<16} {'nDCG@10':>8} {'95% CI':>15} {'P@10':>6} {'R@10':>6} "
            f"{'empty':>6} {'p50 ms':>7} {'p95 ms':>7}")
    lines = [head, "-" * len(head)]

    def f(x, w=6, d=3):
        return f"{x:>{w}.{d}f}" if x is not None else f"{'-':>{w}}"

    for name, r in ev["matchers"].items():
        ci = r["ndcg@10_ci95"]
        ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"
        lines.append(f"{name:<16} {f(r['ndcg@10'], 8)} {ci_s:>15} {f(r['p@10'])} {f(r['r@10'])} "
                     f"{100 * r['empty_share']:>5.1f}% {f(r['latency_ms_p50'], 7, 1)} "
                     f"{f(r['latency_ms_p95'], 7, 1)}")
    lines.append("")
    lines.append(f"{'top-10 mix':<16} " + " ".join(f"{k[:10]:>10}" for k in KINDS))
    for name, r in ev["matchers"].items():
        lines.append(f"{name:<16} " + " ".join(f"{r['top10_composition'][k]:>10.2f}" for k in KINDS))
    lines.append("")
    for key, d in ev["paired_ndcg"].items():
        ci = d["ci95"]
        lines.append(f"delta nDCG@10 {key:<24} {d['ndcg@10']:+.3f}"
                     + (f"  [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""))
    return "\n".join(lines)


def _git_rev() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def setup(tier: str, seed: int, esco_path=None, database_url: str | None = None,
          reset: bool = False, cache: Path | None = None):
    """Data set + loaded, embedded database. Returns (data, url, timings)."""
    timings = {}
    started = time.monotonic()
    esco = load_esco(esco_path)
    data = ds.build(esco, tier, seed)
    timings["build_s"] = round(time.monotonic() - started, 1)
    log(f"data set: {data.summary()}")
    url = prepare_database(database_url, reset=reset, dbname=f"{BENCH_DBNAME}_{tier}")
    with jm_db.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        load(conn, data)
        timings["load_s"] = round(time.monotonic() - started, 1)
        timings["embedding"] = embed_all(conn, cache)
    log(f"embedding: {timings['embedding']}")
    return data, url, timings


def run(tier: str = "small", seed: int = 0, esco_path=None, database_url: str | None = None,
        reset: bool = False, cache: Path | None = None,
        matchers: Sequence[str] = DEFAULT_MATCHERS) -> dict:
    data, url, timings = setup(tier, seed, esco_path, database_url, reset, cache)
    with jm_db.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        evaluation = evaluate(conn, data, [ALL_MATCHERS[n] for n in matchers], seed)
        timings["evaluate_s"] = round(time.monotonic() - started, 1)
        threshold = conn.execute("SELECT similarity_threshold FROM embedding_models"
                                 " WHERE is_active").fetchone()[0]
    return {
        "benchmark": "jobmatch quality (ESCO v1.1.1)", "tier": tier, "seed": seed,
        "git": _git_rev(), "python": platform.python_version(),
        "esco": str(esco_path or default_path()),
        "dataset": data.summary(), "model": "multilingual-e5-small (local, 384-d)",
        "jobmatch_threshold": threshold, "k": LIMIT, "timings": timings,
        "evaluation": evaluation,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    p.add_argument("--tier", choices=tuple(ds.TIERS), default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--esco", type=Path, default=None,
                   help=f"directory (or zip) of the ESCO CSV release [$JOBMATCH_ESCO, {default_path()}]")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON report [bench/results/quality-<tier>.json]")
    p.add_argument("--database-url", default=None,
                   help="use this (migrated or empty) database as is; default: a fresh "
                        "'jobmatch_quality' database on the DATABASE_URL server, else the embedded one")
    p.add_argument("--reset", action="store_true",
                   help="with --database-url: empty its jobs and seekers first")
    p.add_argument("--cache", type=Path, default=None, help=f"embedding cache [{default_cache()}]")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--matchers", default=",".join(DEFAULT_MATCHERS),
                   help=f"comma-separated subset of {', '.join(ALL_MATCHERS)}")
    p.add_argument("--per-seeker", action="store_true", help="keep every answer in the JSON")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    names = [n.strip() for n in args.matchers.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL_MATCHERS]
    if unknown:
        parser().error(f"unknown matcher(s): {', '.join(unknown)}")
    cache = None if args.no_cache else (args.cache or default_cache())
    report = run(args.tier, args.seed, args.esco, args.database_url, args.reset, cache, names)
    if not args.per_seeker:
        report["evaluation"].pop("per_seeker")
    out = args.out or REPO_ROOT / "bench" / "results" / f"quality-{args.tier}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"jobmatch quality benchmark, tier {args.tier}, seed {args.seed}: "
          f"{report['dataset']['occupations']} occupations, {report['dataset']['postings']} postings "
          f"({report['dataset']['postings_in_window']} in the window), "
          f"{report['dataset']['seekers']} seekers; k = {LIMIT}")
    ev = report["evaluation"]
    print(f"seekers with a relevant job: {ev['seekers_with_relevant']}/{ev['seekers']}, "
          f"mean relevant jobs {ev['mean_relevant_per_seeker']:.1f}, "
          f"P@10 ceiling {ev['p@10_ceiling']:.3f}\n")
    print(table(report))
    print(f"\nwritten {out}")
    return 0
