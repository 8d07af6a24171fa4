"""Every benchmark module imports: a rename in the package or in support/
that a benchmark still names fails here, not on the next long run."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for p in (ROOT / "bench").rglob("*.py")
    if p.name not in ("__init__.py", "__main__.py"))


def test_the_benchmarks_are_found():
    assert {"bench.perf", "bench.chaos", "bench.quality.fusion", "bench.model_switch"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_benchmark_module_imports(module):
    importlib.import_module(module)
