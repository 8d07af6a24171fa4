"""The `jobmatch` command as tests run it: a subprocess on one database
(DATABASE_URL), with no OpenAI key from the caller's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def jobmatch(dsn: str, *args: str, env: dict | None = None, check: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `python -m jobmatch.cli ARGS` against `dsn`; with `check`, a
    non-zero exit fails the test with the command's stderr."""
    full_env = {**os.environ, "DATABASE_URL": dsn, **(env or {})}
    full_env.pop("OPENAI_API_KEY", None)
    result = subprocess.run([sys.executable, "-m", "jobmatch.cli", *args], env=full_env,
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr
    return result
