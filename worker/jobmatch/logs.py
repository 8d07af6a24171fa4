"""Structured logs for the worker: one JSON object per line on stderr, so
journald, Loki or `jq` can read them. The API key is scrubbed from every
line, whatever put it there."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(out, default=str))


def scrub(text: str) -> str:
    key = os.environ.get("OPENAI_API_KEY", "")
    return text.replace(key, "***") if len(key) >= 4 else text


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields) -> None:
    """Logs `msg` with `fields` as top-level JSON keys."""
    logger.log(level, msg, extra={"fields": fields})


def setup(level: str | int = "WARNING", json_lines: bool = True) -> None:
    """Called once, by `jobmatch` (cli.main). JSON lines on stderr (the
    worker, backfill): the worker's own events are INFO (progress, batches),
    so `jobmatch.*` logs at INFO or finer; `level` governs the rest (httpx,
    openai) and can make the worker more verbose (DEBUG). Otherwise (the
    admin commands, the demo) plain text lines at `level`."""
    if isinstance(level, str):
        level = getattr(logging, level.upper(), logging.WARNING)
    if not json_lines:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(handlers=[handler], level=level, force=True)
    logging.getLogger("jobmatch").setLevel(min(level, logging.INFO))
