"""The matching-quality benchmark (bench/quality): its metrics and ground
truth by hand, the data set's promises, and the small tier end to end on
the test server as a smoke test with a loose floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.quality import dataset as ds
from bench.quality import metrics as m
from bench.quality.esco import default_path
from bench.quality.load_data import CachingEmbedder
from bench.quality.run import judge, score
from bench.quality.threshold import recommend, sweep
from jobmatch.embedders import Embedded, Item

ESCO = default_path()
needs_esco = pytest.mark.skipif(not ESCO.exists(), reason=f"ESCO release not found at {ESCO}")


# ----------------------------------------------------------------- metrics

def test_dcg_uses_linear_gains_and_log2_discounts():
    assert m.dcg([3, 2, 0, 1]) == pytest.approx(3 + 2 / math.log2(3) + 0 + 1 / math.log2(5))


def test_ndcg_against_a_hand_computed_value():
    ranked = [2, 3, 0]
    corpus = [3, 3, 2, 1, 0, 0]
    ideal = 3 + 3 / math.log2(3) + 2 / 2 + 1 / math.log2(5)
    got = 2 + 3 / math.log2(3)
    assert m.ndcg(ranked, corpus) == pytest.approx(got / ideal)


def test_ndcg_is_one_for_the_ideal_order_and_lower_otherwise():
    corpus = [3, 2, 1, 0]
    assert m.ndcg([3, 2, 1], corpus) == pytest.approx(1.0)
    assert m.ndcg([1, 2, 3], corpus) < 1.0
    assert m.ndcg([], corpus) == 0.0


def test_ndcg_cuts_at_k_and_is_undefined_without_gains():
    corpus = [3] * 12
    assert m.ndcg([0] * 10 + [3, 3], corpus) == 0.0  # relevant only after rank 10
    assert m.ndcg([0, 0], [0, 0, 0]) is None


def test_precision_counts_over_k_and_recall_over_min_k_relevant():
    ranked = [True, False, True] + [False] * 7
    assert m.precision(ranked) == pytest.approx(0.2)
    assert m.precision([True]) == pytest.approx(0.1)  # a short answer is not rewarded
    assert m.recall(ranked, n_relevant=4) == pytest.approx(0.5)
    assert m.recall([True] * 10, n_relevant=25) == pytest.approx(1.0)  # denominator min(10, 25)
    assert m.recall(ranked, n_relevant=0) is None


def test_percentile_interpolates():
    assert m.percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert m.percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert m.percentile([], 50) is None


def test_base_grade_levels():
    assert m.base_grade("a", "2512", "a", "2512") == 3
    assert m.base_grade("a", "2512", "b", "2512") == 2
    assert m.base_grade("a", "2512", "c", "2513") == 1
    assert m.base_grade("a", "2512", "d", "2611") == 0


# ------------------------------------------------------------ hard constraints

JOB = {"ai_city": "Ikeja", "ai_state": "Lagos", "ai_country": "Nigeria",
       "ai_work_arrangement": "On-site", "ai_remote_allowed": False,
       "ai_employment_type": "Full-time", "ai_salary_min": 2_000_000,
       "ai_salary_max": 3_000_000, "ai_salary_currency": "NGN"}


@pytest.mark.parametrize("seeker, expected", [
    ({}, []),
    ({"preferred_locations": ["Lagos"]}, []),                     # state matches
    ({"preferred_locations": ["ikeja "]}, []),                    # city, any case
    ({"preferred_locations": ["Nigeria"]}, []),                   # country
    ({"preferred_locations": ["Abuja"]}, ["location"]),
    ({"preferred_locations": ["Abuja"], "willing_to_relocate": True}, []),
    ({"employment_types": ["Contract"]}, ["employment_type"]),
    ({"employment_types": ["full-time", "Contract"]}, []),
    ({"salary_min": 3_500_000}, ["salary"]),                      # job tops out below the floor
    ({"salary_min": 3_000_000}, []),                              # touching is not disjoint
    ({"salary_min": 500_000, "salary_max": 1_500_000}, ["salary"]),  # job starts above the ceiling
    ({"salary_min": 3_500_000, "salary_currency": "USD"}, []),    # other currency: unknown
    ({"preferred_locations": ["Kano"], "employment_types": ["Part-time"], "salary_min": 9_000_000},
     ["location", "employment_type", "salary"]),
])
def test_violations(seeker, expected):
    assert m.violations(seeker, JOB) == expected


def test_remote_jobs_satisfy_any_location_and_open_bounds_stay_open():
    remote = {**JOB, "ai_city": None, "ai_state": None, "ai_work_arrangement": "Remote",
              "ai_remote_allowed": True}
    assert m.violations({"preferred_locations": ["Kano"]}, remote) == []
    only_min = {**JOB, "ai_salary_max": None}  # job pays from 2M, no top
    assert m.violations({"salary_min": 9_000_000}, only_min) == ["salary"]  # single bound: 2M
    no_pay = {**JOB, "ai_salary_min": None, "ai_salary_max": None}
    assert m.violations({"salary_min": 9_000_000}, no_pay) == []
    no_type = {**JOB, "ai_employment_type": None}
    assert m.violations({"employment_types": ["Contract"]}, no_type) == []


def test_grade_is_zeroed_outside_the_window_or_on_a_violation():
    assert m.grade(3, True, []) == 3
    assert m.grade(3, False, []) == 0
    assert m.grade(2, True, ["salary"]) == 0


def _posting(pid, occ, isco, days=10, **row):
    return ds.Posting(pid, occ, isco, days, {**JOB, **row})


def test_judge_and_score_zero_constraint_breakers_and_stale_jobs():
    seeker = ds.Seeker(1, "occ-a", "2512", {"preferred_locations": ["Lagos"]})
    postings = [
        _posting(1, "occ-a", "2512"),                                  # relevant
        _posting(2, "occ-a", "2512", ai_city="Kano", ai_state="Kano"),  # wrong place
        _posting(3, "occ-a", "2512", days=90),                         # stale
        _posting(4, "occ-b", "2512"),                                  # sibling
        _posting(5, "occ-c", "2513"),                                  # cousin
        _posting(6, "occ-d", "2611"),                                  # unrelated
    ]
    data = ds.Dataset("t", 0, [], postings, [seeker])
    t = judge(data)[1]
    assert t.gains == {1: 3, 4: 2, 5: 1}
    assert t.n_relevant == 1
    assert t.kinds == {1: "relevant", 2: "same_occ_violating", 3: "stale", 4: "sibling", 5: "cousin"}

    best = score([1, 4, 5], t)
    assert best["ndcg"] == pytest.approx(1.0)
    assert best["p"] == pytest.approx(0.1) and best["r"] == pytest.approx(1.0)
    worse = score([2, 3, 4, 1], t)  # the violating and the stale job earn nothing
    assert worse["ndcg"] == pytest.approx((2 / math.log2(4) + 3 / math.log2(5))
                                          / (3 + 2 / math.log2(3) + 1 / 2))
    assert worse["kinds"] == ["same_occ_violating", "stale", "sibling", "relevant"]
    assert score([], t)["empty"] and score([], t)["ndcg"] == 0.0


# --------------------------------------------------------------- threshold

def test_sweep_counts_pairs_and_recommendation_respects_no_fit():
    sims = np.array([[0.9, 0.8, 0.7], [0.85, 0.6, 0.95]])
    positive = np.array([[True, False, False], [False, False, True]])
    rows = {r["threshold"]: r for r in sweep(sims, positive, np.array([0.7, 0.86, 0.92]))}
    assert rows[0.7]["precision"] == pytest.approx(2 / 5) and rows[0.7]["recall"] == 1.0
    assert rows[0.86]["precision"] == pytest.approx(1.0) and rows[0.86]["recall"] == 1.0
    assert rows[0.92]["recall"] == pytest.approx(0.5) and rows[0.92]["no_fit"] == pytest.approx(0.5)
    assert rows[0.92]["empty"] == pytest.approx(0.5)
    rec = recommend(list(rows.values()))
    assert rec["max_f1"]["threshold"] == 0.86
    assert rec["recommended"]["threshold"] == 0.86  # recall 1.0, no_fit 0
    rows[0.86]["recall"] = 0.9  # below the 95% floor: the next lower one that keeps it
    assert recommend(list(rows.values()))["recommended"]["threshold"] == 0.7


def test_apply_stores_the_threshold_for_the_active_model_only(conn, dsn):
    from bench.quality.threshold import apply

    apply(0.835, dsn)
    assert conn.execute("SELECT similarity_threshold FROM embedding_models"
                        " WHERE model = 'multilingual-e5-small'").fetchone()[0] == 0.835
    with pytest.raises(SystemExit, match="not applied"):
        apply(0.5, dsn, model="text-embedding-3-small")
    assert conn.execute("SELECT similarity_threshold FROM embedding_models"
                        " WHERE model = 'text-embedding-3-small'").fetchone()[0] == 0.65


# ------------------------------------------------------------------ cache

class _Counting:
    dimensions = 384

    def __init__(self):
        self.calls = 0

    def embed(self, items):
        self.calls += len(items)
        rng = np.random.default_rng(len(items))
        return Embedded(rng.standard_normal((len(items), 384)).astype(np.float32))


def test_embedding_cache_round_trips_and_separates_query_from_passage(tmp_path):
    path = tmp_path / "emb.npz"
    inner = _Counting()
    first = CachingEmbedder(path, inner)
    items = [Item("job", "nurse"), Item("user", "nurse")]
    vecs = first.embed(items).vectors
    first.save()
    assert inner.calls == 2  # same text, but query and passage are different vectors

    again = CachingEmbedder(path, _Counting())
    out = again.embed(list(reversed(items))).vectors
    assert again.hits == 2 and again.misses == 0
    np.testing.assert_array_equal(out, vecs[::-1])


def test_embedding_cache_keeps_keys_that_end_in_a_zero_byte(tmp_path):
    path = tmp_path / "emb.npz"
    first = CachingEmbedder(path, _Counting())
    text = next(f"t{i}" for i in range(100_000)
                if first.key(Item("job", f"t{i}")).endswith(b"\0"))
    first.embed([Item("job", text)])
    first.save()
    again = CachingEmbedder(path, _Counting())
    again.embed([Item("job", text)])
    assert again.hits == 1 and again.misses == 0


# ---------------------------------------------------------------- data set

@pytest.fixture(scope="module")
def small():
    from bench.quality.esco import load_esco
    return ds.build(load_esco(ESCO), "small", seed=0)


@needs_esco
def test_dataset_is_seeded_and_reproducible(small):
    from bench.quality.esco import load_esco
    again = ds.build(load_esco(ESCO), "small", seed=0)
    assert [p.row for p in again.postings] == [p.row for p in small.postings]
    assert [s.row for s in again.seekers] == [s.row for s in small.seekers]
    other = ds.build(load_esco(ESCO), "small", seed=1)
    assert [p.row["title"] for p in other.postings] != [p.row["title"] for p in small.postings]


@needs_esco
def test_dataset_has_siblings_held_out_titles_and_a_stale_share(small):
    units = {}
    for occ in small.occupations:
        units.setdefault(occ.isco, []).append(occ)
    assert all(len(v) >= 2 for v in units.values())  # every occupation has a sibling
    assert len(small.postings) == ds.POSTINGS_PER_OCCUPATION * len(small.occupations)
    assert any(not p.in_window for p in small.postings) and any(p.in_window for p in small.postings)
    assert all(p.days_ago <= 55 or p.days_ago >= 65 for p in small.postings)
    for s in small.seekers:
        title = s.row["job_roles"][0].lower()
        own = [p for p in small.postings if p.occupation == s.occupation]
        names = {p.row["title"].lower() for p in own} | {
            v.lower() for p in own for v in p.row["ai_job_titles"]}
        words = [w.lower() for ws in ds.TITLE_WORDS.values() for w in ws]
        assert title not in names and not {f"{w} {title}" for w in words} & names, title
        assert len(s.row["technical_skills"]) >= 2


# ------------------------------------------------------------------ smoke

def test_small_tier_end_to_end(dsn):
    from bench.quality.load_data import default_cache
    from bench.quality.run import run

    if not ESCO.exists():
        pytest.skip(f"ESCO release not found at {ESCO}")
    report = run("small", seed=0, database_url=dsn, cache=default_cache())
    ev = report["evaluation"]
    assert ev["seekers"] == report["dataset"]["seekers"] > 0
    assert ev["seekers_with_relevant"] > 0
    assert {"keyword", "plan", "jobmatch"} <= set(ev["matchers"])
    for name, r in ev["matchers"].items():
        for key in ("ndcg@10", "p@10", "r@10", "empty_share"):
            assert 0.0 <= r[key] <= 1.0, (name, key, r[key])
        assert r["latency_ms_p50"] > 0
    assert ev["matchers"]["jobmatch"]["ndcg@10"] > 0.2
    assert ev["matchers"]["keyword"]["ndcg@10"] > 0.1
