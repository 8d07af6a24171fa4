"""The occupation taxonomy as the benchmark loads it (`jobmatch taxonomy
load`'s own code, jobmatch.taxonomy.load), with what the benchmark would
otherwise only look up taken out. The benchmark's seekers and postings are
written with ESCO's own labels, so loading ESCO as it is would measure a
lookup. Two protocols:

  strict    the benchmark's occupations are removed from the taxonomy, and
            with them every occupation broader or narrower than one (by
            ESCO code): a seeker's occupation is never in it, only others
            of their field. The issue's rule; the pessimistic case (a
            WhatsApp seeker whose occupation ESCO lacks).
  stripped  every occupation stays, but every label a benchmark seeker or
            posting uses (any seniority word dropped) is left out of the
            embedded texts: an occupation is found by its other names and
            its description, never by the words the seeker or the posting
            wrote. The realistic case (ESCO has the occupation, the seeker
            words it their own way).

Vectors come from the benchmark's embedding cache."""

from __future__ import annotations

import re

from jobmatch.taxonomy import load, read_occupations

from .load_data import CachingEmbedder

PROTOCOLS = ("none", "strict", "stripped")
_SENIORITY = re.compile(r"^(senior|junior|lead|head|chief|principal|trainee|graduate|"
                        r"mid-level|entry-level)\s+")


def _norm(label: str) -> str:
    return _SENIORITY.sub("", " ".join(str(label).lower().split()))


def used_labels(data) -> frozenset[str]:
    """Every title the benchmark's postings and seekers use, lower case,
    with and without a leading seniority word."""
    out = set()
    for p in data.postings:
        for t in [p.row.get("title"), *(p.row.get("ai_job_titles") or [])]:
            if t:
                out |= {" ".join(str(t).lower().split()), _norm(t)}
    for s in data.seekers:
        for t in s.row.get("job_roles") or []:
            out |= {" ".join(str(t).lower().split()), _norm(t)}
    return frozenset(out)


def load_taxonomy(conn, data, esco, protocol: str, cache, esco_path=None, log=print) -> dict:
    """Loads the taxonomy under `protocol` into the benchmark database and
    maps every row; 'none' empties it (rows' occupations cleared)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"taxonomy protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    (model,) = conn.execute("SELECT model FROM active_embedding_model()").fetchone()
    if protocol == "none":
        conn.execute("DELETE FROM occupations")
        conn.execute("UPDATE canonical_jobs SET job_occupation = NULL"
                     " WHERE job_occupation IS NOT NULL")
        conn.execute("UPDATE user_preferences SET user_occupation = NULL"
                     " WHERE user_occupation IS NOT NULL")
        return {"occupations": 0}
    occupations = read_occupations(esco_path)
    strip: frozenset[str] = frozenset()
    if protocol == "strict":
        codes = [esco.occupations[u].code for u in
                 {s.occupation for s in data.seekers} | {p.occupation for p in data.postings}]

        def related(code: str) -> bool:
            return any(code == b or code.startswith(b + ".") or b.startswith(code + ".")
                       for b in codes)
        occupations = [o for o in occupations if not related(o.code)]
    else:
        strip = used_labels(data)
    embedder = CachingEmbedder(cache)
    try:
        stats = load(conn, occupations, embedder, model, strip=strip, log=lambda *_: None)
    finally:
        embedder.save()
    log(f"taxonomy ({protocol}): {stats}")
    return stats
