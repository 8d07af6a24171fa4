"""Reads an ESCO CSV release (v1.1.1 layout: occupations_en.csv,
skills_en.csv, ...) straight from its zips, or from extracted files, with
zipfile + csv; nothing is extracted to disk. The path may be a directory
(searched recursively) or one zip. `jobmatch taxonomy load` reads the
occupations; bench/quality reads the rest."""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from pathlib import Path
from typing import Iterator

DEFAULT_ESCO = Path(__file__).resolve().parents[3] / "shared" / "data" / "esco"


def default_path() -> Path:
    """$JOBMATCH_ESCO, else ../shared/data/esco beside the checkout."""
    return Path(os.environ.get("JOBMATCH_ESCO", DEFAULT_ESCO))


def labels(cell: str | None) -> tuple[str, ...]:
    """A label cell (one label a line) as labels, spaces collapsed, case-
    insensitive duplicates dropped, in order."""
    seen, out = set(), []
    for raw in (cell or "").split("\n"):
        label = " ".join(raw.split())
        if label and label.lower() not in seen:
            seen.add(label.lower())
            out.append(label)
    return tuple(out)


class EscoFiles:
    """The release's CSV files by name (`patterns`: key -> file name regex),
    inside zips or as plain files; FileNotFoundError names what is missing."""

    def __init__(self, path: Path | str, patterns: dict[str, re.Pattern]):
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"ESCO path not found: {path}")
        self.found: dict[str, tuple[Path, str | None]] = {}
        self._patterns = patterns
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in candidates:
            if file.suffix.lower() == ".zip":
                try:
                    with zipfile.ZipFile(file) as zf:
                        for member in zf.namelist():
                            self._offer(Path(member).name, file, member)
                except zipfile.BadZipFile:
                    raise FileNotFoundError(f"not a zip file: {file}") from None
            else:
                self._offer(file.name, file, None)
        missing = [key for key in patterns if key not in self.found]
        if missing:
            raise FileNotFoundError(
                f"ESCO CSVs not found under {path}: "
                + ", ".join(patterns[k].pattern.strip("^$").replace("\\", "") for k in missing))

    def _offer(self, name: str, file: Path, member: str | None) -> None:
        for key, pattern in self._patterns.items():
            if key not in self.found and pattern.match(name):
                self.found[key] = (file, member)

    def rows(self, key: str) -> Iterator[dict]:
        file, member = self.found[key]
        if member is None:
            with open(file, newline="", encoding="utf-8-sig") as fh:
                yield from csv.DictReader(fh)
        else:
            with zipfile.ZipFile(file) as zf, zf.open(member) as raw:
                yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))


OCCUPATIONS = re.compile(r"^occupations_en\.csv$", re.I)
