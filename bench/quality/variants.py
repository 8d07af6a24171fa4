"""Robustness variants of the ESCO seekers: the same person (occupation,
stated constraints, so the same ground truth) written the way people write on
WhatsApp. Each seeker gets one variant, by user id:

casual    lower case, the title cut to its head words, wrapped in a casual
          phrase as free text; only the first two words of each skill
typos     one letter dropped, doubled or swapped in longer words of the
          title and skills (30% of them)
missing   no skills and no experience (only the title)
places    Nigerian places and pay talk in the free text ("I dey Yaba, Lagos,
          need work as ..., pay 150k"), the title and skills unchanged

Variant seekers get user_id + OFFSET and are loaded beside the originals;
the embedding cache makes a re-run cheap."""

from __future__ import annotations

import copy
import random

from . import dataset as ds

OFFSET = 100_000
KINDS = ("casual", "typos", "missing", "places")
PLACES = ("Yaba", "Ikeja", "Lekki", "Surulere", "Ajah", "Wuse", "Garki", "Rumuola",
          "Ogbomosho", "Nsukka", "Aba", "Onitsha", "Benin", "Warri", "Kaduna", "Ilorin")
CASUAL = ("i need {a} work", "looking for {a} job pls", "any {a} job dey?", "{a} work abeg",
          "i am {a}, need job urgently")


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5 or rng.random() >= 0.3:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(("drop", "double", "swap"))
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]


def _typos(rng: random.Random, text: str) -> str:
    return " ".join(_typo(rng, w) for w in text.split(" "))


def variant(seeker: ds.Seeker, kind: str, rng: random.Random) -> ds.Seeker:
    row = copy.deepcopy(seeker.row)
    row["user_id"] = seeker.user_id + OFFSET
    title = row["job_roles"][0] if row["job_roles"] else ""
    if kind == "casual":
        words = title.lower().split()
        short = " ".join(words[-2:]) if len(words) > 2 else " ".join(words)
        row["job_roles"] = [short]
        row["user_job_input"] = rng.choice(CASUAL).format(a=short)
        row["technical_skills"] = [" ".join(s.lower().split()[:2]) for s in row["technical_skills"]]
    elif kind == "typos":
        row["job_roles"] = [_typos(rng, r) for r in row["job_roles"]]
        row["technical_skills"] = [_typos(rng, s) for s in row["technical_skills"]]
    elif kind == "missing":
        row["technical_skills"] = []
        row["soft_skills"] = []
        row["experience_level"] = None
        row["years_of_experience"] = None
    elif kind == "places":
        place = rng.choice(PLACES)
        row["user_job_input"] = (f"I dey {place}, need work as {title.lower()}, "
                                 f"pay {rng.choice((80, 120, 150, 250))}k monthly")
        row["user_location_input"] = f"{place} area"
    return ds.Seeker(row["user_id"], seeker.occupation, seeker.isco, row)


def variants(data: ds.Dataset, seed: int = 0) -> tuple[list[ds.Seeker], dict[int, str]]:
    rng = random.Random(seed + 13)
    out, kinds = [], {}
    for s in data.seekers:
        kind = KINDS[s.user_id % len(KINDS)]
        v = variant(s, kind, rng)
        out.append(v)
        kinds[v.user_id] = kind
    return out, kinds
