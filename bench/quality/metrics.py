"""Ground truth and metrics. Pure functions of the data set's rows: nothing
here asks the database, so the judge is independent of the matchers.

Grade of a job for a seeker (the gain in nDCG):
    3  same ESCO occupation
    2  same ISCO-08 unit group (a sibling occupation)
    1  same ISCO-08 minor group
    0  otherwise,
and 0 whatever the occupation when the job is outside the 60-day window or
breaks a hard constraint the seeker stated (see `violations`).

A job is *relevant* when its grade is 3 after that zeroing."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

K = 10


def base_grade(seeker_occupation: str, seeker_isco: str, job_occupation: str, job_isco: str) -> int:
    if seeker_occupation == job_occupation:
        return 3
    if seeker_isco == job_isco:
        return 2
    if seeker_isco[:3] == job_isco[:3]:
        return 1
    return 0


def _lower(items: Iterable[str] | None) -> set[str]:
    return {str(x).strip().lower() for x in (items or ()) if x and str(x).strip()}


def job_is_remote(job: dict) -> bool:
    return bool(job.get("ai_remote_allowed")) or (job.get("ai_work_arrangement") or "").lower() == "remote"


def violations(seeker: dict, job: dict) -> list[str]:
    """The hard constraints the seeker stated that the job breaks:

    location         the seeker named places, is not willing to relocate, and the
                     job is neither remote nor in one of the places (city, state
                     or country)
    employment_type  the seeker named employment types and the job's is another
    salary           both state pay in the same currency and the ranges are
                     disjoint (job's top below the seeker's floor, or its bottom
                     above the seeker's ceiling); a missing bound is open
    """
    out = []
    places = _lower(seeker.get("preferred_locations"))
    if places and not seeker.get("willing_to_relocate") and not job_is_remote(job):
        if not (_lower([job.get("ai_city"), job.get("ai_state"), job.get("ai_country")]) & places):
            out.append("location")
    types = _lower(seeker.get("employment_types"))
    job_type = (job.get("ai_employment_type") or "").strip().lower()
    if types and job_type and job_type not in types:
        out.append("employment_type")
    s_lo, s_hi = seeker.get("salary_min") or None, seeker.get("salary_max") or None
    j_lo, j_hi = job.get("ai_salary_min") or None, job.get("ai_salary_max") or None
    same_currency = ((seeker.get("salary_currency") or "NGN").upper()
                     == (job.get("ai_salary_currency") or "NGN").upper())
    if (s_lo or s_hi) and (j_lo or j_hi) and same_currency:
        j_lo, j_hi = j_lo or j_hi, j_hi or j_lo
        if (s_lo and j_hi < s_lo) or (s_hi and j_lo > s_hi):
            out.append("salary")
    return out


def grade(base: int, in_window: bool, violated: Sequence[str]) -> int:
    return 0 if (not in_window or violated) else base


def dcg(gains: Sequence[float], k: int = K) -> float:
    """Sum of gain / log2(rank + 1), ranks from 1 (linear gains, as trec_eval)."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(list(gains)[:k]))


def ndcg(ranked_gains: Sequence[float], all_gains: Iterable[float], k: int = K) -> float | None:
    """DCG@k of the answer over DCG@k of the best possible answer from every
    job in the corpus; None when no job has a positive gain (undefined)."""
    ideal = dcg(sorted((g for g in all_gains if g > 0), reverse=True), k)
    if ideal == 0:
        return None
    return dcg(ranked_gains, k) / ideal


def precision(ranked_relevant: Sequence[bool], k: int = K) -> float:
    """Relevant jobs in the top k over k (a short answer is not rewarded)."""
    return sum(bool(r) for r in list(ranked_relevant)[:k]) / k


def recall(ranked_relevant: Sequence[bool], n_relevant: int, k: int = K) -> float | None:
    """Relevant jobs in the top k over min(k, number of relevant jobs): 1.0 is
    reachable whatever the number of relevant jobs. None without relevant jobs."""
    if n_relevant <= 0:
        return None
    return sum(bool(r) for r in list(ranked_relevant)[:k]) / min(k, n_relevant)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]."""
    data = sorted(values)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
