"""Small things every benchmark and many tests use."""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def log(msg: str) -> None:
    """A progress line on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0..100) of `values`, linear interpolation; None if empty."""
    return float(np.percentile(values, q)) if len(values) else None


def wait_for(predicate, timeout: float = 15.0, what: str = "condition", interval: float = 0.05):
    """Polls `predicate` until it returns something true, and returns that;
    TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
