"""python -m bench.quality.fusion: match_jobs' ranking weights and relevance
floor fitted honestly, on part of the ESCO occupations, and reported on
occupations never used for fitting.

Every (seeker, job in the window) pair's features come from the database,
computed by match_jobs' own SQL helpers (cosines of the stored profile and
role vectors,
jobmatch_job_fits, ts_rank_cd, jobmatch_word_share, jobmatch_experience_gap,
jobmatch_near_miss_reason), so nothing here re-implements a rule; numpy only
replays match_jobs' order (exact search: candidates = the nearest
match_candidates jobs that fit, the nearest of any kind for the reference and
near misses; the role similarity in the model's units) for many weight
settings.

--role-scale global (the default, match_jobs' and match_users' form) scores
the role similarity pair by pair, with no statistics of the seeker's
candidates (so match_users scores one pair the same way): z = k * (role - mu), k and mu constants
of the model fitted on each split's fitting half (role_constants): mu the
median over its seekers of their candidates' mean role cosine, k the median
of the ratio sd(profile cosine) / sd(role cosine) over their candidates. A
per-seeker shift changes neither the order nor the floor, so only k matters
for ranking; mu only for missing role vectors (z = 0) and the shown score.

Split: seekers are split by ISCO-08 minor group (3 digits, the families of
the benchmark: an occupation's siblings and cousins are in the same one), half
the groups to fit, the other half to report, for several seeds. Weights are
chosen on the fitting half by grid search on nDCG@10 with a penalty for
seekers left with nothing relevant, then measured on the held-out half beside
the plan's way and keyword on the same seekers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobmatch import db as jm_db
from support.common import log

from . import metrics as m
from .run import judge, setup

K = 10
CANDIDATES = 100
NEAR_MISSES = 3

FEATURES_SQL = """
SELECT j.id, 1 - (j.job_embedding <=> u.user_embedding),
       1 - (j.job_role_embedding <=> u.user_role_embedding),
       jobmatch_job_fits(jobmatch_lower_set(u.preferred_locations), u.willing_to_relocate,
           jobmatch_lower_set(u.employment_types),
           u.salary_min, u.salary_max, u.salary_currency,
           j.ai_city, j.ai_state, j.ai_country, j.ai_remote_allowed,
           j.ai_work_arrangement, j.ai_employment_type,
           j.ai_salary_min, j.ai_salary_max, j.ai_salary_currency),
       jobmatch_near_miss_reason(u, j, jobmatch_lower_set(u.preferred_locations),
                                 jobmatch_lower_set(u.employment_types)) IS NOT NULL,
       coalesce(ts_rank_cd(j.job_document, jobmatch_user_keyword_query(u), 32), 0),
       jobmatch_word_share(jobmatch_words(u.technical_skills), j.job_document, '{b,c}'),
       jobmatch_word_share(jobmatch_words(u.job_roles, false), j.job_document, '{a}'),
       jobmatch_experience_gap(u.experience_level, u.years_of_experience,
           j.ai_job_level, j.ai_years_experience_min, j.ai_years_experience_max),
       greatest(0, 1 - extract(epoch FROM now() - j.posted_date)
                       / extract(epoch FROM now() - (current_date - st.match_window_days)))
FROM user_preferences AS u CROSS JOIN jobmatch_settings AS st
INNER JOIN canonical_jobs AS j ON j.posted_date >= current_date - st.match_window_days
WHERE u.user_id = %(user_id)s
ORDER BY j.id
"""
FEATURE_NAMES = ("sim", "role", "fits", "near", "kw", "skill", "title", "exp", "fresh")

# the occupations' agreement (15_occupations.sql): apart from the rest, so
# that features of another taxonomy load need only this query
OCCUPATION_SQL = """
SELECT j.id, CASE WHEN u.user_occupation IS NOT NULL AND j.job_occupation IS NOT NULL
                 THEN jobmatch_occupation_match(u.user_occupation, j.job_occupation) END
FROM user_preferences AS u CROSS JOIN jobmatch_settings AS st
INNER JOIN canonical_jobs AS j ON j.posted_date >= current_date - st.match_window_days
WHERE u.user_id = %(user_id)s
ORDER BY j.id
"""


def occupation_features(conn, pairs) -> None:
    """Sets each seeker's "occ" feature from the taxonomy loaded now: NaN
    where a side has no occupation (the role term counts there instead)."""
    for uid, p in pairs.items():
        rows = conn.execute(OCCUPATION_SQL, {"user_id": uid}).fetchall()
        assert [r[0] for r in rows] == p.job.tolist(), "the window changed since the features"
        p.f["occ"] = np.array([np.nan if r[1] is None else float(r[1]) for r in rows])


@dataclass
class Pairs:
    """One seeker's window jobs and their features and grades."""
    job: np.ndarray
    f: dict[str, np.ndarray]
    gain: np.ndarray          # grade after the hard constraints (0-3)
    base: np.ndarray          # grade before them (3 own occupation, 2 sibling, 1 cousin)
    all_gains: list[int]
    n_relevant: int


def features(conn, data, users) -> dict[int, Pairs]:
    truth = judge(data)
    base_of = {}
    by_id = {p.id: p for p in data.postings}
    seekers = {s.user_id: s for s in data.seekers}
    out: dict[int, list] = {}
    for uid in users:
        out[uid] = conn.execute(FEATURES_SQL, {"user_id": uid}).fetchall()
    pairs = {}
    for uid, rs in out.items():
        if not rs:
            continue
        # a missing role similarity (no role vector on either side) is NaN:
        # the replay treats it as neutral, as match_jobs does
        arr = np.array([[float(x) if x is not None else (np.nan if i == 2 else 0.0)
                         for i, x in enumerate(r)] for r in rs])
        job = arr[:, 0].astype(int)
        f = {name: arr[:, i + 1] for i, name in enumerate(FEATURE_NAMES)}
        t = truth[uid]
        s = seekers[uid]
        base_of = np.array([m.base_grade(s.occupation, s.isco, by_id[j].occupation, by_id[j].isco)
                            for j in job])
        gain = np.array([t.gains.get(int(j), 0) for j in job])
        pairs[uid] = Pairs(job, f, gain, base_of, t.all_gains, t.n_relevant)
    return pairs


def _candidates(p: Pairs, candidates: int):
    """The weight-free part of match_jobs' order for one seeker, computed
    once: nearest fitting and nearest open candidates, and the role
    similarity standardised over them, in units of the cosines' spread
    (match_jobs' `scored`): 0 where a side has no role vector. Also the
    candidates' statistics role_constants() fits the global form on: mean
    role cosine, sd(profile cosine) / sd(role cosine) (None if undefined)."""
    key = f"_candidates_{candidates}"
    got = p.__dict__.get(key)
    if got is None:
        sim, fits = p.f["sim"], p.f["fits"] > 0.5
        order = np.argsort(-sim, kind="stable")
        fit_idx, open_idx = order[fits[order]][:candidates], order[:candidates]
        pool = np.union1d(fit_idx, open_idx)
        role = p.f["role"]
        z = np.zeros(len(sim))
        known = pool[~np.isnan(role[pool])]
        stats = None
        if len(known) and len(pool):
            sd = role[known].std()
            if sd > 0:
                z[known] = (role[known] - role[known].mean()) / sd * sim[pool].std()
                stats = (float(role[known].mean()), float(sim[pool].std() / sd))
        got = (fit_idx, open_idx, z, stats)
        p.__dict__[key] = got
    return got


def role_constants(pairs, users, candidates: int = CANDIDATES) -> tuple[float, float]:
    """k and mu of the pair-local role term z = k * (role - mu), fitted on
    these seekers: mu the median of their candidates' mean role cosine, k
    the median of sd(profile cosine) / sd(role cosine) over their candidates
    (the per-seeker form's scale, made one constant)."""
    stats = [s for u in users if (s := _candidates(pairs[u], candidates)[3]) is not None]
    return (float(np.median([r for _, r in stats])), float(np.median([mu for mu, _ in stats])))


def _global_z(p: Pairs, k: float, mu: float) -> np.ndarray:
    key = f"_global_z_{k!r}_{mu!r}"
    z = p.__dict__.get(key)
    if z is None:
        z = np.nan_to_num(k * (p.f["role"] - mu), nan=0.0)
        p.__dict__[key] = z
    return z


@dataclass(frozen=True)
class Weights:
    """match_jobs' shipped defaults (migrations 0012 and 0014)."""
    keyword: float = 0.1
    skill: float = 0.3
    title: float = 0.04
    experience: float = 0.01
    freshness: float = 0.005
    margin: float = 0.25          # relevance floor below the best score; inf: none
    role: float = 0.5             # role similarity, standardised (jobmatch_settings.rank_role_weight)
    occupation: float = 0.05      # occupations' agreement (rank_occupation_weight, migration 0018)
    near_misses: int = NEAR_MISSES
    # None: the role cosine standardised over the seeker's candidates (match_jobs);
    # a number: the pair-local form z = role_k * (role - role_mu) (--role-scale global)
    role_k: float | None = None
    role_mu: float = 0.0


def answer(p: Pairs, w: Weights, threshold: float = 0.82, candidates: int = CANDIDATES):
    """match_jobs' order (exact search) for one seeker: job indices, and
    whether each is a near miss."""
    f = p.f
    sim = f["sim"]
    fit_idx, open_idx, role_z, _ = _candidates(p, candidates)
    if not len(open_idx):
        return [], []
    if w.role_k is not None:
        role_z = _global_z(p, w.role_k, w.role_mu)
    # what the work is: the occupations' agreement where both sides have
    # one, else the role term (jobmatch_pair_score)
    occ = f.get("occ")
    if occ is None:
        work = w.role * role_z
    else:
        work = np.where(np.isnan(occ), w.role * role_z, w.occupation * np.nan_to_num(occ))
    score = (sim + w.keyword * f["kw"] + w.skill * f["skill"] + w.title * f["title"]
             - w.experience * f["exp"] + w.freshness * f["fresh"] + work)
    best = max(score[open_idx].max(), score[fit_idx].max() if len(fit_idx) else -np.inf)
    relevant = (score >= best - w.margin) & (sim >= threshold)
    keep = fit_idx[relevant[fit_idx]]
    keep = keep[np.lexsort((p.job[keep], -score[keep]))][:K]
    misses = []
    if len(keep) < K and w.near_misses:
        cand = np.setdiff1d(open_idx, fit_idx)
        cand = cand[relevant[cand] & (f["near"][cand] > 0.5)]
        cand = cand[np.lexsort((p.job[cand], -score[cand]))][:w.near_misses]
        misses = list(cand[:K - len(keep)])
    return list(keep) + misses, [False] * len(keep) + [True] * len(misses)


def evaluate(pairs: dict[int, Pairs], users, w: Weights) -> dict:
    nd, none_rel, grade0, unrelated, returned, lens = [], [], 0, 0, 0, []
    for u in users:
        p = pairs[u]
        idx, _ = answer(p, w)
        gains = [int(p.gain[i]) for i in idx]
        if p.all_gains:
            nd.append(m.ndcg(gains, p.all_gains))
        if p.n_relevant:
            none_rel.append(not any(g == 3 for g in gains))
        grade0 += sum(1 for g in gains if g == 0)
        unrelated += sum(1 for i in idx if p.base[i] == 0)
        returned += len(idx)
        lens.append(len(idx))
    return {"ndcg": float(np.mean(nd)), "nothing_relevant": float(np.mean(none_rel)),
            "grade0_share": grade0 / max(returned, 1),
            "unrelated_share": unrelated / max(returned, 1),
            "mean_len": float(np.mean(lens)), "per_seeker_ndcg": nd}


# keyword and title words: every earlier fit chose 0.1 and 0.04 (or one
# step away, within the tolerance), so they stay fixed and the grid spends
# its settings on the occupation weight (which replaces the role term where
# both sides have an occupation: with a taxonomy loaded the role weight
# changes nothing)
GRID = {
    "keyword": (0.1,),
    "skill": (0.1, 0.2, 0.3),
    "title": (0.04,),
    "margin": (0.15, 0.2, 0.25, float("inf")),
    "role": (0.0, 0.5, 1.0),
    "occupation": (0.0, 0.025, 0.05, 0.1),
}
TOLERANCE = 0.01


def fit(pairs, users, grid=GRID, **fixed) -> tuple[Weights, dict]:
    """The grid setting with the fewest unrelated jobs (another ISCO minor
    group) among those within TOLERANCE nDCG@10 of the best on these
    seekers, and with no more seekers left with nothing relevant than the
    best: the floor may cost a little ranking quality, never the right job.
    `fixed`: Weights fields the same in every setting (role_k, role_mu)."""
    results = []
    for values in itertools.product(*grid.values()):
        w = Weights(**dict(zip(grid, values)), **fixed)
        results.append((w, evaluate(pairs, users, w)))
    top = max(results, key=lambda x: x[1]["ndcg"])[1]
    ok = [x for x in results if x[1]["ndcg"] >= top["ndcg"] - TOLERANCE
          and x[1]["nothing_relevant"] <= top["nothing_relevant"]]
    return min(ok, key=lambda x: (x[1]["unrelated_share"], -x[1]["ndcg"]))


def split(data, seed: int):
    groups = sorted({s.isco[:3] for s in data.seekers})
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    train = set(groups[: len(groups) // 2])
    tr = [s.user_id for s in data.seekers if s.isco[:3] in train]
    te = [s.user_id for s in data.seekers if s.isco[:3] not in train]
    return tr, te


def answers(conn, users, sql) -> dict[int, list[int]]:
    return {u: [r[0] for r in conn.execute(sql, {"user_id": u}).fetchall()] for u in users}


class _Base:
    """Stand-in for Pairs in baseline(): base grades straight from the data."""

    def __init__(self, data, uid):
        s = next(x for x in data.seekers if x.user_id == uid)
        self.job = np.array([p.id for p in data.postings])
        self.base = np.array([m.base_grade(s.occupation, s.isco, p.occupation, p.isco)
                              for p in data.postings])


def baseline(truth, pairs, got: dict[int, list[int]], users) -> dict:
    """Scores of a matcher's stored answers; unrelated = a job of another
    ISCO minor group than the seeker's (grade 0 before the constraints)."""
    nd, none_rel, g0, unrel, n = [], [], 0, 0, 0
    for u in users:
        ids = got[u]
        gains = [truth[u].gains.get(j, 0) for j in ids]
        base = dict(zip(pairs[u].job.tolist(), pairs[u].base.tolist()))
        if truth[u].all_gains:
            nd.append(m.ndcg(gains, truth[u].all_gains))
        if truth[u].n_relevant:
            none_rel.append(not any(g == 3 for g in gains))
        g0 += sum(1 for g in gains if g == 0)
        unrel += sum(1 for j in ids if base.get(j, 0) == 0)
        n += len(ids)
    return {"ndcg": float(np.mean(nd)), "nothing_relevant": float(np.mean(none_rel)),
            "grade0_share": g0 / max(n, 1), "unrelated_share": unrel / max(n, 1),
            "mean_len": n / max(len(users), 1), "per_seeker_ndcg": nd}


def robustness(url, data, seed: int) -> None:
    """match_jobs, plan and keyword on the variant seekers, by kind, beside
    the same seekers as originally written."""
    import dataclasses

    from .load_data import SEEKER_COLUMNS, _copy, default_cache, embed_all
    from .matchers import JOBMATCH, KEYWORD, PLAN
    from .variants import KINDS, OFFSET, variants
    vs, kinds = variants(data, seed)
    both = dataclasses.replace(data, seekers=data.seekers + vs)
    with jm_db.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM user_preferences WHERE user_id >= %s", [OFFSET])
        _copy(conn, "user_preferences", SEEKER_COLUMNS, [v.row for v in vs])
        log(f"variants: {embed_all(conn, default_cache())}")
        users = [s.user_id for s in both.seekers]
        pairs = {u: _Base(both, u) for u in users}
        truth = judge(both)
        got = {name: answers(conn, users, sql) for name, sql in
               (("match_jobs", JOBMATCH.sql), ("plan", PLAN.sql), ("keyword", KEYWORD.sql))}
        (role_weight,) = conn.execute("SELECT rank_role_weight FROM jobmatch_settings").fetchone()
        conn.execute("UPDATE jobmatch_settings SET rank_role_weight = 0")
        try:
            got["match_jobs, role 0"] = answers(conn, users, JOBMATCH.sql)
        finally:
            conn.execute("UPDATE jobmatch_settings SET rank_role_weight = %s", [role_weight])
    print(f"\nrobustness: the same seekers written otherwise (one variant each), nDCG@10"
          f" / nothing relevant / unrelated share")
    print(f"{'variant':<10} {'seekers':>7} " + " ".join(f"{n:>26}" for n in got))
    for kind in ("original", *KINDS):
        if kind == "original":
            us = [s.user_id for s in data.seekers]
        else:
            us = [u for u, k in kinds.items() if k == kind]
        cells = []
        for name in got:
            r = baseline(truth, pairs, got[name], us)
            cells.append(f"{r['ndcg']:.3f} / {100 * r['nothing_relevant']:4.1f}% / "
                         f"{100 * r['unrelated_share']:4.1f}%")
        print(f"{kind:<10} {len(us):>7} " + " ".join(f"{c:>26}" for c in cells))


def open_benchmark(tier: str, seed: int, reuse: bool):
    """(data, esco, url): the tier's benchmark database loaded and embedded
    (bench.quality's setup), or with `reuse` as the last run left it
    (migrated again: the functions re-applied, no reload)."""
    from .esco import load_esco
    from .load_data import BENCH_DBNAME, LOCAL_MODEL, _server_admin_url, default_cache
    esco = load_esco(None)
    if not reuse:
        data, url, _ = setup(tier, seed, cache=default_cache())
        return data, esco, url
    from psycopg.conninfo import make_conninfo

    from jobmatch.migrate import migrate

    from . import dataset as ds
    data = ds.build(esco, tier, seed)
    url = make_conninfo(_server_admin_url(), dbname=f"{BENCH_DBNAME}_{tier}")
    migrate(url, LOCAL_MODEL)
    return data, esco, url


class _Unpickler(pickle.Unpickler):
    """Pairs pickled by `python -m bench.quality.fusion` name __main__."""

    def find_class(self, module, name):
        if module == "__main__" and name == "Pairs":
            return Pairs
        return super().find_class(module, name)


def cached_features(conn, data, users, path: str | None) -> dict[int, Pairs]:
    """features(), read from the pickle `path` if it exists, else computed
    and written there (when given)."""
    if path and Path(path).exists():
        with open(path, "rb") as fh:
            return _Unpickler(fh).load()
    pairs = features(conn, data, users)
    if path:
        with open(path, "wb") as fh:
            pickle.dump(pairs, fh)
    return pairs


def ci95(xs) -> tuple[float, float, float]:
    xs = np.asarray(xs, dtype=float)
    if len(xs) < 2:
        return float(xs.mean()), float("nan"), float("nan")
    # t quantile for small k (k-1 degrees of freedom)
    t = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}.get(
        len(xs) - 1, 1.96)
    half = t * xs.std(ddof=1) / np.sqrt(len(xs))
    return float(xs.mean()), float(xs.mean() - half), float(xs.mean() + half)


def main(argv=None) -> int:
    from .matchers import JOBMATCH, KEYWORD, PLAN
    ap = argparse.ArgumentParser(prog="python -m bench.quality.fusion", description=__doc__)
    ap.add_argument("--tier", default="full")
    ap.add_argument("--seed", type=int, default=0, help="data set seed")
    ap.add_argument("--splits", type=int, default=5, help="split seeds 0..N-1")
    ap.add_argument("--out", default=None)
    ap.add_argument("--features", default=None,
                    help="pickle of the pairs' features: read if it exists, else written")
    ap.add_argument("--variants", action="store_true",
                    help="also load and score the robustness variants (bench/quality/variants.py)")
    ap.add_argument("--role-scale", choices=("seeker", "global"), default="global",
                    help="global (match_jobs, match_users): z = k * (role - mu), k and mu "
                         "fitted on the fitting half, the model's role_scale and role_mean; "
                         "seeker: the role cosine standardised over each seeker's candidates "
                         "(the form before 0014 was released; same held-out nDCG@10)")
    ap.add_argument("--role-weights", default=None,
                    help="comma-separated role weights for the grid (default: "
                         + ",".join(map(str, GRID["role"])) + "); e.g. 0 for none")
    ap.add_argument("--taxonomy", choices=("none", "strict", "stripped"), default="none",
                    help="the occupation taxonomy loaded (bench/quality/taxonomy.py): strict "
                         "(the benchmark's occupations removed), stripped (its labels removed "
                         "from the texts), none")
    ap.add_argument("--reuse", action="store_true",
                    help="use the tier's benchmark database as the last run left it "
                         "(functions re-applied, no reload)")
    args = ap.parse_args(argv)
    data, esco, url = open_benchmark(args.tier, args.seed, args.reuse)
    users = [s.user_id for s in data.seekers]
    with jm_db.connect(url, autocommit=True) as conn:
        from .load_data import default_cache
        from .taxonomy import load_taxonomy
        load_taxonomy(conn, data, esco, args.taxonomy, default_cache(), log=log)
        started = time.monotonic()
        pairs = cached_features(conn, data, users, args.features)
        occupation_features(conn, pairs)
        log(f"features: {sum(len(p.job) for p in pairs.values())} pairs in "
            f"{time.monotonic() - started:.0f}s")
        truth = judge(data)
        got = {name: answers(conn, users, sql) for name, sql in
               (("match_jobs", JOBMATCH.sql), ("plan", PLAN.sql), ("keyword", KEYWORD.sql))}
        # match_jobs as it ranked before role vectors: the same database and
        # texts, the role weight set to 0 for these answers only
        (role_weight,) = conn.execute("SELECT rank_role_weight FROM jobmatch_settings").fetchone()
        conn.execute("UPDATE jobmatch_settings SET rank_role_weight = 0")
        try:
            got["match_jobs_no_role"] = answers(conn, users, JOBMATCH.sql)
        finally:
            conn.execute("UPDATE jobmatch_settings SET rank_role_weight = %s", [role_weight])
        (occ_weight,) = conn.execute(
            "SELECT rank_occupation_weight FROM jobmatch_settings").fetchone()
        conn.execute("UPDATE jobmatch_settings SET rank_occupation_weight = 0")
        try:
            got["match_jobs_no_occupation"] = answers(conn, users, JOBMATCH.sql)
        finally:
            conn.execute("UPDATE jobmatch_settings SET rank_occupation_weight = %s",
                         [occ_weight])
        grid = dict(GRID)
        if args.role_weights is not None:
            grid["role"] = tuple(float(x) for x in args.role_weights.split(","))
        rows = []
        for sd in range(args.splits):
            tr, te = split(data, sd)
            fixed = {}
            if args.role_scale == "global":
                k, mu = role_constants(pairs, tr)
                fixed = {"role_k": k, "role_mu": mu}
                log(f"split {sd}: role scale global, k {k:.4f} mu {mu:.4f} "
                    f"(fitted on {len(tr)} seekers)")
            w, r_tr = fit(pairs, tr, grid, **fixed)
            r_te = evaluate(pairs, te, w)
            shipped = evaluate(pairs, te, Weights(**fixed))
            no_role = evaluate(pairs, te, Weights(role=0.0, **fixed))
            no_occ = evaluate(pairs, te, Weights(occupation=0.0, **fixed))
            b = {k: baseline(truth, pairs, g, te) for k, g in got.items()}
            rows.append({"split": sd, "role_scale": args.role_scale, "taxonomy": args.taxonomy,
                         **fixed,
                         "weights": w.__dict__, "fit": {k: v for k, v in r_tr.items()
                                                                     if k != "per_seeker_ndcg"},
                         "held_out": {k: v for k, v in r_te.items() if k != "per_seeker_ndcg"},
                         "shipped_defaults": {k: v for k, v in shipped.items()
                                              if k != "per_seeker_ndcg"},
                         "defaults_no_role": {k: v for k, v in no_role.items()
                                              if k != "per_seeker_ndcg"},
                         "defaults_no_occupation": {k: v for k, v in no_occ.items()
                                                    if k != "per_seeker_ndcg"},
                         **{k: {kk: vv for kk, vv in v.items() if kk != "per_seeker_ndcg"}
                            for k, v in b.items()}})
            log(f"split {sd}: fit {r_tr['ndcg']:.3f} held-out {r_te['ndcg']:.3f} "
                f"(defaults {shipped['ndcg']:.3f}, no role {no_role['ndcg']:.3f}, "
                f"match_jobs {b['match_jobs']['ndcg']:.3f}, plan {b['plan']['ndcg']:.3f}, "
                f"keyword {b['keyword']['ndcg']:.3f}) nothing {r_te['nothing_relevant']:.3f} "
                f"weights {w}")
    print(f"\nheld-out ISCO minor groups, {args.splits} splits (mean, 95% CI over splits); "
          f"role scale {args.role_scale}, role weights {grid['role']}")
    if args.role_scale == "global":
        print(f"role term z = k * (role - mu): k {np.mean([r['role_k'] for r in rows]):.4f} "
              f"mu {np.mean([r['role_mu'] for r in rows]):.4f} (mean over splits; per split "
              + ", ".join(f"{r['role_k']:.3f}/{r['role_mu']:.3f}" for r in rows) + ")")
    print(f"taxonomy: {args.taxonomy}")
    for key in ("occupation", "role", "margin", "skill", "title", "keyword"):
        print(f"fitted {key}: " + " ".join(f"{r['weights'][key]:g}" for r in rows))
    print(f"{'ranking':<32} {'nDCG@10':>8} {'95% CI':>17} {'nothing rel.':>13} "
          f"{'grade 0':>8} {'unrelated':>10} {'rows':>5}")
    for name, key in (("fitted on the other half", "held_out"),
                      ("defaults (replay)", "shipped_defaults"),
                      ("match_jobs (SQL)", "match_jobs"),
                      ("defaults, role 0 (replay)", "defaults_no_role"),
                      ("match_jobs, role 0 (SQL)", "match_jobs_no_role"),
                      ("defaults, occupation 0 (replay)", "defaults_no_occupation"),
                      ("match_jobs, occupation 0 (SQL)", "match_jobs_no_occupation"),
                      ("plan", "plan"), ("keyword", "keyword")):
        mean, lo, hi = ci95([r[key]["ndcg"] for r in rows])
        nothing = np.mean([r[key]["nothing_relevant"] for r in rows])
        g0 = np.mean([r[key]["grade0_share"] for r in rows])
        un = np.mean([r[key]["unrelated_share"] for r in rows])
        ln = np.mean([r[key]["mean_len"] for r in rows])
        print(f"{name:<32} {mean:>8.3f} [{lo:.3f}, {hi:.3f}] {100 * nothing:>12.1f}% "
              f"{100 * g0:>7.1f}% {100 * un:>9.1f}% {ln:>5.1f}")
    if args.variants:
        robustness(url, data, args.seed)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
