"""The benchmark's data set, built deterministically from ESCO with one seed.

Occupations come in families: a few ISCO-08 minor groups (3 digits), two or
more unit groups (4 digits) in each, two or more occupations in each unit
group. Every occupation therefore has siblings (same unit group, shared
skills) and cousins (same minor group) among the postings, and those are the
distractors the matchers must rank below the seeker's own occupation.

Postings (``POSTINGS_PER_OCCUPATION`` each): a title from the occupation's
labels (some with a seniority word), 50-80% of its essential skills, a few
optional skills and a couple of skills of a sibling, plus the structured
fields the bot extracts (city/state/country or remote, arrangement,
employment type, salary range, years of experience, posted date; about a
third fall outside the 60-day window).

Seekers (``SEEKERS_PER_OCCUPATION`` each): a desired title that is an
alternative label no posting of the occupation uses and no other ESCO
occupation carries, 20-50% of the essential skills and two noise skills of a
sibling, all written with the skills' alternative labels (postings use the
preferred labels, so exact string matching has no edge), and structured preferences
(locations, relocation, arrangements, employment types, salary floor/ceiling,
experience).

Dates are kept as "days ago" and turned into timestamps when loading, so the
same seed gives the same benchmark on any day."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from jobmatch.demo_data import CITIES, COMPANIES, GENERIC_SOFT, SALARY_SCALES, YEARS

from .esco import Esco, Occupation

POSTINGS_PER_OCCUPATION = 10
SEEKERS_PER_OCCUPATION = 2
WINDOW_DAYS = 60  # jobmatch_settings.match_window_days
# Posted dates stay clear of the window's edge (55 vs 65 days), so a time zone
# or a run across midnight cannot move a posting in or out of the window.
IN_WINDOW_DAYS = (0, 55)
OUT_WINDOW_DAYS = (65, 150)
OUT_WINDOW_SHARE = 0.3

MIN_ESSENTIAL, MAX_ESSENTIAL = 8, 30
HELD_OUT_LABELS = SEEKERS_PER_OCCUPATION
MIN_POSTING_LABELS = 2

TIERS = {
    # occupations, (unit groups per minor group), (occupations per unit group)
    "small": {"occupations": 12, "units": (2, 3), "per_unit": (2, 3)},
    "full": {"occupations": 240, "units": (2, 3), "per_unit": (2, 4)},
}

LEVELS = ("Entry", "Mid", "Senior", "Lead")
LEVEL_WEIGHTS = (25, 35, 28, 12)
TITLE_WORDS = {"Entry": ("Junior", "Graduate", "Trainee"), "Mid": (),
               "Senior": ("Senior", "Experienced"), "Lead": ("Lead", "Principal")}
EMPLOYMENT = ("Full-time", "Contract", "Part-time", "Internship")
EMPLOYMENT_WEIGHTS = (70, 15, 10, 5)
STATES = tuple(dict.fromkeys(state for _, state, _ in CITIES))
# ISCO major group -> the demo's salary scale; ICT unit groups pay like tech.
SCALE_BY_MAJOR = {"1": "professional", "2": "professional", "3": "skilled", "4": "basic",
                  "5": "basic", "6": "basic", "7": "skilled", "8": "skilled", "9": "basic"}
TECH_UNITS = ("251", "252", "351", "133")


@dataclass
class Posting:
    id: int
    occupation: str  # URI
    isco: str
    days_ago: int
    row: dict        # canonical_jobs columns

    @property
    def in_window(self) -> bool:
        return self.days_ago <= WINDOW_DAYS


@dataclass
class Seeker:
    user_id: int
    occupation: str
    isco: str
    row: dict        # user_preferences columns


@dataclass
class Dataset:
    tier: str
    seed: int
    occupations: list[Occupation]
    postings: list[Posting]
    seekers: list[Seeker]
    skipped: dict = field(default_factory=dict)

    def summary(self) -> dict:
        units = {o.isco for o in self.occupations}
        return {"tier": self.tier, "seed": self.seed, "occupations": len(self.occupations),
                "unit_groups": len(units), "minor_groups": len({u[:3] for u in units}),
                "postings": len(self.postings),
                "postings_in_window": sum(p.in_window for p in self.postings),
                "seekers": len(self.seekers)}


# --------------------------------------------------------------------- selection

def _label_owners(esco: Esco) -> dict[str, set[str]]:
    owners: dict[str, set[str]] = defaultdict(set)
    for occ in esco.occupations.values():
        for label in (occ.label, *occ.alt_labels):
            owners[label.lower()].add(occ.uri)
    return owners


def _usable_alt_labels(occ: Occupation, owners: dict[str, set[str]]) -> list[str]:
    """Alternative labels that name only this occupation in all of ESCO."""
    return [a for a in occ.alt_labels
            if a.lower() != occ.label.lower() and owners[a.lower()] == {occ.uri}
            and 3 <= len(a) <= 60]


def _nested(a: Occupation, b: Occupation) -> bool:
    """One is a narrower occupation of the other (ESCO codes 2512.4 / 2512.4.1):
    practically the same job, so never both in one family."""
    return a.code.startswith(b.code + ".") or b.code.startswith(a.code + ".")


def select_occupations(esco: Esco, tier: str, rng: random.Random) -> list[Occupation]:
    spec = TIERS[tier]
    owners = _label_owners(esco)
    eligible = [o for o in esco.occupations.values()
                if MIN_ESSENTIAL <= len(o.essential) <= MAX_ESSENTIAL
                and len(_usable_alt_labels(o, owners)) >= HELD_OUT_LABELS + MIN_POSTING_LABELS - 1]
    by_unit: dict[str, list[Occupation]] = defaultdict(list)
    for occ in sorted(eligible, key=lambda o: o.uri):
        by_unit[occ.isco].append(occ)
    by_minor: dict[str, list[str]] = defaultdict(list)
    for unit, occs in sorted(by_unit.items()):
        if len(occs) >= 2:
            by_minor[unit[:3]].append(unit)
    # Minor groups with two or more unit groups first: they give cousins too.
    minors = sorted(by_minor)
    rng.shuffle(minors)
    minors.sort(key=lambda m: len(by_minor[m]) < 2)

    chosen: list[Occupation] = []
    target = spec["occupations"]
    for minor in minors:
        units = list(by_minor[minor])
        rng.shuffle(units)
        for unit in units[:rng.randint(*spec["units"])]:
            pool = list(by_unit[unit])
            rng.shuffle(pool)
            family: list[Occupation] = []
            want = rng.randint(*spec["per_unit"])
            for occ in pool:
                if len(family) < want and not any(_nested(occ, f) for f in family):
                    family.append(occ)
            if len(family) < 2:
                continue
            if len(chosen) >= target:
                break
            # never a lone occupation in its unit group: the total may end one over
            chosen.extend(family[:max(2, target - len(chosen))])
        if len(chosen) >= target:
            break
    return chosen


# ----------------------------------------------------------------------- helpers

def _title(label: str) -> str:
    return label[:1].upper() + label[1:]


def _round(amount: float, step: int = 50_000) -> int:
    return max(step, int(round(amount / step)) * step)


def _scale(isco: str) -> str:
    return "tech" if isco.startswith(TECH_UNITS) else SCALE_BY_MAJOR.get(isco[0], "skilled")


def _city(rng: random.Random) -> tuple[str, str]:
    city, state, _ = rng.choices(CITIES, weights=[w for *_, w in CITIES])[0]
    return city, state


def _skill_alt(rng: random.Random, esco: Esco, uri: str) -> str:
    """The skill as a seeker writes it: one of its alternative labels."""
    skill = esco.skills[uri]
    alts = [a for a in skill.alt_labels if a.lower() != skill.label.lower()]
    return rng.choice(alts) if alts else skill.label


# ---------------------------------------------------------------------- postings

def _posting(rng: random.Random, esco: Esco, occ: Occupation, siblings: list[Occupation],
             labels: list[str], job_id: int) -> Posting:
    level = rng.choices(LEVELS, weights=LEVEL_WEIGHTS)[0]
    label = rng.choice(labels)
    words = TITLE_WORDS[level]
    title = f"{rng.choice(words)} {label}" if words and rng.random() < 0.6 else _title(label)
    variations = [_title(x) for x in rng.sample([x for x in labels if x != label],
                                                min(len(labels) - 1, rng.randint(0, 2)))]

    essential = list(occ.essential)
    k = max(3, round(len(essential) * rng.uniform(0.5, 0.8)))
    required = [esco.skills[s].label for s in rng.sample(essential, k)]
    optional = [esco.skills[s].label for s in rng.sample(list(occ.optional),
                                                          min(len(occ.optional), rng.randint(2, 4)))]
    sibling = rng.choice(siblings)
    foreign = [s for s in sibling.essential if s not in set(occ.essential) | set(occ.optional)]
    preferred = list(optional)
    for uri in rng.sample(foreign, min(2, len(foreign))):
        (required if rng.random() < 0.5 else preferred).append(esco.skills[uri].label)
    rng.shuffle(required)
    rng.shuffle(preferred)

    if rng.random() < 0.22:
        city = state = None
        arrangement, remote, location = "Remote", True, "Remote (Nigeria)"
    else:
        city, state = _city(rng)
        arrangement = "On-site" if rng.random() < 0.7 else "Hybrid"
        remote, location = False, f"{city}, {state}, Nigeria"
    employment = rng.choices(EMPLOYMENT, weights=EMPLOYMENT_WEIGHTS)[0]
    if employment == "Internship" and level != "Entry":
        employment = "Full-time"
    lo, hi = SALARY_SCALES[_scale(occ.isco)][level]
    jitter = rng.uniform(0.85, 1.15)
    salary = (None, None) if rng.random() < 0.15 else (_round(lo * jitter), _round(hi * jitter))
    ymin, ymax = YEARS[level]
    days = (rng.randint(*OUT_WINDOW_DAYS) if rng.random() < OUT_WINDOW_SHARE
            else rng.randint(*IN_WINDOW_DAYS))
    row = {
        "id": job_id, "title": title, "company": rng.choice(COMPANIES), "description": None,
        "location": location, "ai_job_titles": variations, "ai_job_function": None,
        "ai_job_level": [level], "ai_industry": None, "ai_city": city, "ai_state": state,
        "ai_country": "Nigeria", "ai_work_arrangement": arrangement, "ai_remote_allowed": remote,
        "ai_employment_type": employment, "ai_required_skills": required,
        "ai_preferred_skills": preferred, "ai_years_experience_min": ymin,
        "ai_years_experience_max": ymax, "ai_salary_min": salary[0], "ai_salary_max": salary[1],
        "ai_salary_currency": "NGN" if salary[0] else None, "ai_summary": None,
    }
    return Posting(job_id, occ.uri, occ.isco, days, row)


# ----------------------------------------------------------------------- seekers

def _seeker(rng: random.Random, esco: Esco, occ: Occupation, siblings: list[Occupation],
            title: str, user_id: int) -> Seeker:
    level = rng.choices(LEVELS, weights=LEVEL_WEIGHTS)[0]
    years = rng.randint(*YEARS[level])
    essential = list(occ.essential)
    k = max(2, round(len(essential) * rng.uniform(0.2, 0.5)))
    skills = [_skill_alt(rng, esco, s) for s in rng.sample(essential, k)]
    sibling = rng.choice(siblings)
    foreign = [s for s in sibling.essential if s not in set(occ.essential)]
    skills += [_skill_alt(rng, esco, s) for s in rng.sample(foreign, min(2, len(foreign)))]
    rng.shuffle(skills)

    r = rng.random()
    if r < 0.2:
        places: list[str] = []
    else:
        city, state = _city(rng)
        places = [city] if rng.random() < 0.5 else [state]
        if rng.random() < 0.3:
            other_city, other_state = _city(rng)
            extra = other_city if rng.random() < 0.5 else other_state
            if extra not in places:
                places.append(extra)
    arrangements = rng.choice([[], ["On-site"], ["On-site", "Hybrid"], ["Hybrid", "Remote"],
                               ["Remote"], ["On-site", "Hybrid", "Remote"]])
    employment = rng.choices([[], ["Full-time"], ["Full-time", "Contract"], ["Contract"],
                              ["Part-time"]], weights=(45, 35, 10, 5, 5))[0]
    lo, hi = SALARY_SCALES[_scale(occ.isco)][level]
    salary_min = _round(lo * rng.uniform(0.8, 1.3)) if rng.random() < 0.6 else None
    salary_max = (_round(salary_min * rng.uniform(1.5, 2.5))
                  if salary_min and rng.random() < 0.25 else None)
    row = {
        "user_id": user_id, "job_roles": [_title(title)], "job_categories": [],
        "user_job_input": None, "experience_level": level, "years_of_experience": years,
        "technical_skills": skills,
        "soft_skills": rng.sample(GENERIC_SOFT, rng.randint(0, 2)),
        "preferred_locations": places, "user_location_input": None,
        "willing_to_relocate": rng.random() < 0.2, "work_arrangements": arrangements,
        "employment_types": employment, "salary_min": salary_min, "salary_max": salary_max,
        "salary_currency": "NGN", "company_size_preference": [], "industry_preferences": [],
    }
    return Seeker(user_id, occ.uri, occ.isco, row)


# ------------------------------------------------------------------------- build

def build(esco: Esco, tier: str = "small", seed: int = 0) -> Dataset:
    """Separate random streams for the selection and for each occupation's
    postings and seekers: changing how seekers are written leaves every
    posting (and its cached vector) as it was."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; one of {', '.join(TIERS)}")
    base = f"jobmatch-quality/{tier}/{seed}"
    occupations = select_occupations(esco, tier, random.Random(f"{base}/select"))
    owners = _label_owners(esco)
    by_unit: dict[str, list[Occupation]] = defaultdict(list)
    for occ in occupations:
        by_unit[occ.isco].append(occ)

    postings: list[Posting] = []
    seekers: list[Seeker] = []
    for occ in occupations:
        siblings = [o for o in by_unit[occ.isco] if o.uri != occ.uri]
        alts = _usable_alt_labels(occ, owners)
        random.Random(f"{base}/{occ.uri}/labels").shuffle(alts)
        held_out, posting_labels = alts[:HELD_OUT_LABELS], [occ.label, *alts[HELD_OUT_LABELS:]]
        rng = random.Random(f"{base}/{occ.uri}/postings")
        for _ in range(POSTINGS_PER_OCCUPATION):
            postings.append(_posting(rng, esco, occ, siblings, posting_labels, len(postings) + 1))
        rng = random.Random(f"{base}/{occ.uri}/seekers")
        for title in held_out:
            seekers.append(_seeker(rng, esco, occ, siblings, title, len(seekers) + 1))
    return Dataset(tier, seed, occupations, postings, seekers)
