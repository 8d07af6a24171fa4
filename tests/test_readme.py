"""README's quick start is what CI runs and what the CLI offers; every test the
README and the guides in docs/ cite exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("jobmatch demo")
    assert commands[1].endswith("pytest")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci.splitlines()


def test_every_test_the_readme_cites_exists():
    # README is the front door; the guides (Guarantees among them) live in docs/
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    cited = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text))
    assert len(cited) > 30
    missing = [f"{path}::{name}" for path, name in sorted(cited)
               if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE)]
    assert missing == []
