"""python -m bench.quality.threshold: calibrates the per-model similarity
threshold on the benchmark.

Every (seeker, job in the 60-day window) pair is a prediction: "similarity >=
t" says the job fits the seeker. It is right when the job is of the seeker's
own occupation (grade 3 before the hard constraints: they are filters, the
threshold only judges fit). For each t:

    precision  pairs >= t that are the seeker's occupation / pairs >= t
    recall     pairs >= t that are the seeker's occupation / all such pairs
    no_fit     seekers with a same-occupation job in the window but none >= t
               (their semantic answer has nothing relevant)
    empty      seekers with no job at all >= t (match_jobs falls back to keywords)

Recommended threshold: the highest one that keeps recall >= 99% and no_fit
<= 2%. The threshold is a floor against junk, not the ranker: match_jobs
orders what passes it, so the floor should keep nearly every right job and
cut as much else as it can. (The max-F1 threshold is reported too; with a
384-d e5 model it hides the right jobs from a fifth of the seekers.) The
command also runs match_jobs at the current, recommended and max-F1
thresholds and reports nDCG@10 and the empty share at each. --apply stores it in embedding_models.similarity_threshold
of the configured database (DATABASE_URL or the embedded `jobmatch`
database) for the benchmarked model, which must be the active one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from jobmatch import db as jm_db

from . import dataset as ds
from . import metrics as m
from .esco import REPO_ROOT, default_path
from .load_data import LOCAL_MODEL, default_cache
from .run import setup

STEP = 0.005
MAX_NO_FIT = 0.02
MIN_RECALL = 0.99
SHOWN = (0.65, 0.70, 0.75, 0.78, 0.80, 0.82, 0.83, 0.84, 0.85, 0.86, 0.87, 0.88, 0.90)


def _vectors(conn, sql: str) -> tuple[list[int], np.ndarray]:
    rows = conn.execute(sql).fetchall()
    ids = [r[0] for r in rows]
    vecs = np.stack([np.asarray(getattr(r[1], "to_numpy", lambda: r[1])(), dtype=np.float32)
                     for r in rows])
    return ids, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def sweep(sims: np.ndarray, positive: np.ndarray, thresholds: np.ndarray) -> list[dict]:
    """sims, positive: (seekers, jobs) similarity and ground truth."""
    has_pos = positive.any(axis=1)
    n_pos = int(positive.sum())
    # sort once: counts of pairs >= t by binary search
    flat = np.sort(sims.ravel())
    flat_pos = np.sort(sims[positive])
    best_pos = np.where(positive, sims, -np.inf).max(axis=1)
    best_any = sims.max(axis=1)
    out = []
    for t in thresholds:
        predicted = len(flat) - np.searchsorted(flat, t, side="left")
        tp = len(flat_pos) - np.searchsorted(flat_pos, t, side="left")
        p = tp / predicted if predicted else 1.0
        r = tp / n_pos if n_pos else 0.0
        out.append({
            "threshold": round(float(t), 4), "precision": float(p), "recall": float(r),
            "f1": float(2 * p * r / (p + r)) if p + r else 0.0,
            "pairs_above": int(predicted),
            "no_fit": float(np.mean(best_pos[has_pos] < t)) if has_pos.any() else 0.0,
            "empty": float(np.mean(best_any < t)),
            "mean_above_per_seeker": float(predicted / sims.shape[0]),
        })
    return out


def recommend(rows: list[dict]) -> dict:
    best = max(rows, key=lambda r: (r["f1"], -r["threshold"]))
    safe = [r for r in rows if r["recall"] >= MIN_RECALL and r["no_fit"] <= MAX_NO_FIT]
    chosen = max(safe, key=lambda r: r["threshold"]) if safe else rows[0]
    return {"max_f1": best, "recommended": chosen,
            "rule": f"the highest threshold that keeps recall >= {MIN_RECALL:.0%} of "
                    f"same-occupation pairs and no_fit <= {MAX_NO_FIT:.0%} of seekers: the "
                    "threshold is a floor against junk, the ranking orders what passes it"}


def ndcg_at(conn, data, thresholds) -> list[dict]:
    """match_jobs' nDCG@10 and empty share with the threshold set to each t
    (in the benchmark database; the original value is put back)."""
    from .matchers import JOBMATCH
    from .run import evaluate

    (orig,) = conn.execute("SELECT similarity_threshold FROM embedding_models"
                           " WHERE is_active").fetchone()
    out = []
    try:
        for t in thresholds:
            conn.execute("UPDATE embedding_models SET similarity_threshold = %s WHERE is_active", [t])
            r = evaluate(conn, data, [JOBMATCH])["matchers"]["jobmatch"]
            out.append({"threshold": t, "ndcg@10": r["ndcg@10"], "p@10": r["p@10"],
                        "r@10": r["r@10"], "empty_share": r["empty_share"],
                        "mean_answer_len": r["mean_answer_len"]})
    finally:
        conn.execute("UPDATE embedding_models SET similarity_threshold = %s WHERE is_active", [orig])
    return out


def calibrate(tier: str = "full", seed: int = 0, esco_path=None, database_url=None,
              reset=False, cache=None) -> dict:
    data, url, timings = setup(tier, seed, esco_path, database_url, reset, cache)
    with jm_db.connect(url, autocommit=True) as conn:
        users, U = _vectors(conn, "SELECT user_id, user_embedding FROM user_preferences"
                                  " WHERE user_embedding IS NOT NULL ORDER BY user_id")
        jobs, J = _vectors(conn, "SELECT id, job_embedding FROM canonical_jobs"
                                 " WHERE job_embedding IS NOT NULL ORDER BY id")
    postings = {p.id: p for p in data.postings}
    seekers = {s.user_id: s for s in data.seekers}
    keep = [i for i, j in enumerate(jobs) if postings[j].in_window]
    jobs, J = [jobs[i] for i in keep], J[keep]
    sims = U @ J.T
    positive = np.array([[m.base_grade(seekers[u].occupation, seekers[u].isco,
                                       postings[j].occupation, postings[j].isco) == 3
                          for j in jobs] for u in users])
    thresholds = np.round(np.arange(0.60, 0.96 + 1e-9, STEP), 4)
    rows = sweep(sims, positive, thresholds)
    rec = recommend(rows)
    with jm_db.connect(url, autocommit=True) as conn:
        (current,) = conn.execute("SELECT similarity_threshold FROM embedding_models"
                                  " WHERE is_active").fetchone()
        checked = ndcg_at(conn, data, sorted({round(float(current), 4),
                                              rec["recommended"]["threshold"],
                                              rec["max_f1"]["threshold"]}))
    pos, neg = sims[positive], sims[~positive]
    return {
        "tier": tier, "seed": seed, "model": LOCAL_MODEL[0], "dataset": data.summary(),
        "pairs": int(sims.size), "positive_pairs": int(positive.sum()),
        "similarity": {"same_occupation": _dist(pos), "other": _dist(neg)},
        "current_threshold": current, "sweep": rows, **rec, "match_jobs_at": checked,
        "timings": timings,
    }


def _dist(x: np.ndarray) -> dict:
    return {"mean": float(x.mean()), "p5": float(np.percentile(x, 5)),
            "p50": float(np.percentile(x, 50)), "p95": float(np.percentile(x, 95))}


def apply(threshold: float, url: str | None = None, model: str = LOCAL_MODEL[0]) -> str:
    url = url or jm_db.database_url()
    with jm_db.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT model FROM embedding_models WHERE is_active").fetchone()
        if not row or row[0] != model:
            raise SystemExit(f"the active model is {row and row[0]}, the threshold was "
                             f"calibrated for {model}: not applied")
        conn.execute("UPDATE embedding_models SET similarity_threshold = %s WHERE model = %s",
                     [threshold, model])
    return url


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quality.threshold", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tier", choices=tuple(ds.TIERS), default="full")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--esco", type=Path, default=None, help=f"ESCO release [{default_path()}]")
    p.add_argument("--database-url", default=None, help="benchmark database (see bench.quality)")
    p.add_argument("--reset", action="store_true")
    p.add_argument("--cache", type=Path, default=None, help=f"embedding cache [{default_cache()}]")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON report [bench/results/threshold-<tier>.json]")
    p.add_argument("--apply", action="store_true",
                   help="store the recommended threshold for the model in the configured database")
    p.add_argument("--apply-to", default=None,
                   help="database to store it in [DATABASE_URL, else the embedded jobmatch database]")
    args = p.parse_args(argv)
    cache = None if args.no_cache else (args.cache or default_cache())
    report = calibrate(args.tier, args.seed, args.esco, args.database_url, args.reset, cache)
    out = args.out or REPO_ROOT / "bench" / "results" / f"threshold-{args.tier}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")

    sim = report["similarity"]
    print(f"threshold sweep, tier {args.tier}, seed {args.seed}, {report['model']}: "
          f"{report['pairs']} seeker-job pairs in the window, {report['positive_pairs']} same occupation")
    print(f"similarity same occupation: p5 {sim['same_occupation']['p5']:.3f} "
          f"median {sim['same_occupation']['p50']:.3f}; others: median {sim['other']['p50']:.3f} "
          f"p95 {sim['other']['p95']:.3f}\n")
    print(f"{'t':>6} {'precision':>9} {'recall':>7} {'F1':>6} {'no_fit':>7} {'empty':>6} {'jobs>=t':>8}")
    marks = {report["recommended"]["threshold"]: " <- recommended",
             report["max_f1"]["threshold"]: " (max F1)"}
    for r in report["sweep"]:
        if any(abs(r["threshold"] - s) < 1e-9 for s in SHOWN) or r["threshold"] in marks:
            print(f"{r['threshold']:>6.3f} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} "
                  f"{100 * r['no_fit']:>6.1f}% {100 * r['empty']:>5.1f}% "
                  f"{r['mean_above_per_seeker']:>8.1f}{marks.get(r['threshold'], '')}")
    print(f"\nmatch_jobs with the threshold at t (current: {report['current_threshold']:.3f}):")
    print(f"{'t':>6} {'nDCG@10':>8} {'P@10':>6} {'R@10':>6} {'empty':>6} {'answer len':>10}")
    for r in report["match_jobs_at"]:
        print(f"{r['threshold']:>6.3f} {r['ndcg@10']:>8.3f} {r['p@10']:>6.3f} {r['r@10']:>6.3f} "
              f"{100 * r['empty_share']:>5.1f}% {r['mean_answer_len']:>10.1f}")
    rec = report["recommended"]["threshold"]
    print(f"\nrecommended similarity_threshold for {report['model']}: {rec:.3f} ({report['rule']})")
    if args.apply:
        where = apply(rec, args.apply_to)
        print(f"applied: embedding_models.similarity_threshold = {rec:.3f} for {report['model']} "
              f"in {jm_db_label(where)}")
    print(f"written {out}")
    return 0


def jm_db_label(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict
    info = conninfo_to_dict(url)
    return f"database {info.get('dbname')!r} on {info.get('host') or 'localhost'}"


if __name__ == "__main__":
    sys.exit(main())
