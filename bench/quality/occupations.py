"""python -m bench.quality.occupations: what the occupation taxonomy
(`jobmatch taxonomy load`, migration 0018) is worth to match_jobs, fitted
on half the ESCO benchmark's ISCO groups and reported on the other half,
under both ways of hiding the benchmark from the taxonomy
(bench/quality/taxonomy.py): *strict* (the benchmark's occupations are not
in it) and *stripped* (they are, without the labels the benchmark's seekers
and postings use).

Only rank_occupation_weight is fitted; every other weight stays at its
default (fitted without a taxonomy: bench.quality.fusion). Where both sides
of a pair have an occupation its agreement replaces the role term
(jobmatch_pair_score), so with a taxonomy loaded the role weight changes
nothing. Rule, per split, on the fitting half: the weight with the best
worst case over the two protocols (a taxonomy that lacks a seeker's
occupation must not cost much, one that has it should help); ties within
0.01 nDCG@10 and leaving no more seekers without a relevant job: fewer
unrelated jobs (bench.quality.fusion's rule). Reported on the held-out half for each
protocol: the fitted weight (replay), the shipped default (replay and the
SQL match_jobs, which must agree), no taxonomy (what match_jobs did
before), the plan's way and keyword."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from jobmatch import db as jm_db
from support.common import log

from .fusion import (TOLERANCE, Weights, answers, baseline, cached_features, ci95, evaluate,
                     occupation_features, open_benchmark, role_constants, split)
from .load_data import default_cache
from .matchers import JOBMATCH, KEYWORD, PLAN
from .run import judge
from .taxonomy import load_taxonomy

PROTOCOLS = ("strict", "stripped")
WEIGHTS = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15)
KEYS = ("ndcg", "nothing_relevant", "grade0_share", "unrelated_share", "mean_len")


def _with(pairs, occ, users, w):
    for u in users:
        pairs[u].f["occ"] = occ[u]
    return evaluate(pairs, users, w)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality.occupations", description=__doc__)
    ap.add_argument("--tier", default="full")
    ap.add_argument("--seed", type=int, default=0, help="data set seed")
    ap.add_argument("--splits", type=int, default=5, help="split seeds 0..N-1")
    ap.add_argument("--features", default=None,
                    help="pickle of the pairs' features (bench.quality.fusion's): read if it "
                         "exists, else written")
    ap.add_argument("--reuse", action="store_true",
                    help="use the tier's benchmark database as the last run left it")
    ap.add_argument("--out", default=None, help="JSON of the per-split figures")
    args = ap.parse_args(argv)
    data, esco, url = open_benchmark(args.tier, args.seed, args.reuse)
    users = [s.user_id for s in data.seekers]
    truth = judge(data)
    occ, got, hits = {}, {}, {}
    with jm_db.connect(url, autocommit=True) as conn:
        pairs = cached_features(conn, data, users, args.features)
        (default_weight,) = conn.execute(
            "SELECT rank_occupation_weight FROM jobmatch_settings").fetchone()
        got["plan"] = answers(conn, users, PLAN.sql)
        got["keyword"] = answers(conn, users, KEYWORD.sql)
        load_taxonomy(conn, data, esco, "none", default_cache(), log=log)
        got["no taxonomy"] = answers(conn, users, JOBMATCH.sql)
        for protocol in PROTOCOLS:
            load_taxonomy(conn, data, esco, protocol, default_cache(), log=log)
            occupation_features(conn, pairs)
            occ[protocol] = {u: pairs[u].f["occ"] for u in users}
            mapped = dict(conn.execute("SELECT user_id, user_occupation FROM user_preferences"
                                       " WHERE user_id = ANY(%s)", [users]).fetchall())
            hits[protocol] = [np.mean([(mapped.get(s.user_id) or "")[:n] == s.isco[:n]
                                       for s in data.seekers]) for n in (4, 3)]
            got[protocol] = answers(conn, users, JOBMATCH.sql)
    log(f"shipped rank_occupation_weight {default_weight}")
    rows = []
    for sd in range(args.splits):
        tr, te = split(data, sd)
        k, mu = role_constants(pairs, tr)
        base = Weights(role_k=k, role_mu=mu)
        fits = []
        for weight in WEIGHTS:
            w = dataclasses.replace(base, occupation=weight)
            r = {p: _with(pairs, occ[p], tr, w) for p in PROTOCOLS}
            fits.append((weight, min(r[p]["ndcg"] for p in PROTOCOLS),
                         np.mean([r[p]["unrelated_share"] for p in PROTOCOLS]),
                         max(r[p]["nothing_relevant"] for p in PROTOCOLS)))
        top = max(fits, key=lambda f: f[1])
        weight = min((f for f in fits if f[1] >= top[1] - TOLERANCE and f[3] <= top[3]),
                     key=lambda f: (f[2], -f[1]))[0]
        row = {"split": sd, "fitted_weight": weight}
        for p in PROTOCOLS:
            fitted = _with(pairs, occ[p], te, dataclasses.replace(base, occupation=weight))
            shipped = _with(pairs, occ[p], te, dataclasses.replace(base, occupation=default_weight))
            row[p] = {"fitted": fitted, "shipped (replay)": shipped,
                      "match_jobs (SQL)": baseline(truth, pairs, got[p], te)}
        for name in ("no taxonomy", "plan", "keyword"):
            row[name] = baseline(truth, pairs, got[name], te)
        rows.append(row)
        log(f"split {sd}: fitted weight {weight}; held-out "
            + ", ".join(f"{p} {row[p]['fitted']['ndcg']:.3f}" for p in PROTOCOLS)
            + f"; no taxonomy {row['no taxonomy']['ndcg']:.3f}")
    for p in PROTOCOLS:
        print(f"{p}: the seeker's occupation is of their own ISCO unit group for "
              f"{100 * hits[p][0]:.1f}% of seekers, of their minor group for {100 * hits[p][1]:.1f}%")
    print(f"\nheld-out ISCO minor groups, {args.splits} splits (mean, 95% CI over splits)")
    print("fitted rank_occupation_weight per split: "
          + " ".join(f"{r['fitted_weight']:g}" for r in rows) + f"; shipped {default_weight:g}")
    print(f"{'taxonomy':<9} {'ranking':<22} {'nDCG@10':>8} {'95% CI':>17} {'nothing rel.':>13} "
          f"{'grade 0':>8} {'unrelated':>10} {'rows':>5}")
    lines = [(p, name, [r[p][name] for r in rows]) for p in PROTOCOLS
             for name in ("fitted", "shipped (replay)", "match_jobs (SQL)")]
    lines += [("-", name, [r[name] for r in rows]) for name in ("no taxonomy", "plan", "keyword")]
    for protocol, name, rs in lines:
        mean, lo, hi = ci95([r["ndcg"] for r in rs])
        print(f"{protocol:<9} {name:<22} {mean:>8.3f} [{lo:.3f}, {hi:.3f}] "
              f"{100 * np.mean([r['nothing_relevant'] for r in rs]):>12.1f}% "
              f"{100 * np.mean([r['grade0_share'] for r in rs]):>7.1f}% "
              f"{100 * np.mean([r['unrelated_share'] for r in rs]):>9.1f}% "
              f"{np.mean([r['mean_len'] for r in rs]):>5.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        slim = [{k: ({kk: {m: v for m, v in vv.items() if m in KEYS} for kk, vv in v.items()}
                     if isinstance(v, dict) and "fitted" in v
                     else ({m: x for m, x in v.items() if m in KEYS} if isinstance(v, dict) else v))
                 for k, v in r.items()} for r in rows]
        with open(args.out, "w") as fh:
            json.dump(slim, fh, indent=2, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
