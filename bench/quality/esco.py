"""Reads an ESCO CSV release (v1.1.1 layout) straight from its zips with
zipfile + csv: occupations, skills, occupation-skill relations and ISCO-08
group labels. Nothing is extracted to disk.

The path may be a directory holding the release's zips and/or extracted CSV
files (searched recursively), or one zip. Files are found by name, so both the
split zips (classification + relations) and the single zip the ESCO portal
hands out work."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from jobmatch.esco import OCCUPATIONS, EscoFiles, default_path
from jobmatch.esco import labels as _labels

REPO_ROOT = Path(__file__).resolve().parents[2]

_FILES = {
    "occupations": OCCUPATIONS,
    "skills": re.compile(r"^skills_en\.csv$", re.I),
    "relations": re.compile(r"^occupationskillrelations(_en)?\.csv$", re.I),
    "isco": re.compile(r"^iscogroups_en\.csv$", re.I),
}


@dataclass(frozen=True)
class Skill:
    uri: str
    label: str
    alt_labels: tuple[str, ...]


@dataclass(frozen=True)
class Occupation:
    uri: str
    code: str          # ESCO code, e.g. 2512.4 (narrower occupations: 2512.4.1)
    isco: str          # ISCO-08 unit group, 4 digits
    label: str
    alt_labels: tuple[str, ...]
    essential: tuple[str, ...]  # skill URIs
    optional: tuple[str, ...]

    @property
    def minor(self) -> str:
        return self.isco[:3]


@dataclass
class Esco:
    occupations: dict[str, Occupation]
    skills: dict[str, Skill]
    isco_labels: dict[str, str] = field(default_factory=dict)


class _Source(EscoFiles):
    """The four files the benchmark reads (jobmatch.esco.EscoFiles)."""

    def __init__(self, path: Path):
        super().__init__(path, _FILES)


def load_esco(path: str | Path | None = None) -> Esco:
    src = _Source(Path(path) if path else default_path())
    essential: dict[str, list[str]] = defaultdict(list)
    optional: dict[str, list[str]] = defaultdict(list)
    for row in src.rows("relations"):
        kind = (row.get("relationType") or "").strip().lower()
        (essential if kind == "essential" else optional)[row["occupationUri"]].append(row["skillUri"])

    skills = {}
    for row in src.rows("skills"):
        label = " ".join((row.get("preferredLabel") or "").split())
        if label:
            skills[row["conceptUri"]] = Skill(row["conceptUri"], label, _labels(row.get("altLabels")))

    occupations = {}
    for row in src.rows("occupations"):
        isco = (row.get("iscoGroup") or "").strip()
        label = " ".join((row.get("preferredLabel") or "").split())
        if not (label and re.fullmatch(r"\d{4}", isco)):
            continue
        uri = row["conceptUri"]
        occupations[uri] = Occupation(
            uri=uri, code=(row.get("code") or "").strip(), isco=isco, label=label,
            alt_labels=_labels(row.get("altLabels")),
            essential=tuple(s for s in dict.fromkeys(essential.get(uri, ())) if s in skills),
            optional=tuple(s for s in dict.fromkeys(optional.get(uri, ())) if s in skills))

    isco_labels = {row["code"].strip(): row["preferredLabel"].strip()
                   for row in src.rows("isco") if row.get("code")}
    return Esco(occupations, skills, isco_labels)
