"""The simplest correct consumer: claim, embed, complete, until the queue
has nothing ready. The demo and `jobmatch worker --once` use it; the
long-running worker loop wakes it on NOTIFY."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import psycopg

from . import queue
from .embedders import Embedder, EmbeddingError, Item

log = logging.getLogger(__name__)


@dataclass
class DrainStats:
    claimed: int = 0
    written: int = 0
    failed: int = 0
    dead_lettered: int = 0
    batches: int = 0


def process_batch(conn: psycopg.Connection, embedder: Embedder, worker_id: str,
                  batch: list[queue.Claimed], stats: DrainStats) -> None:
    """Embeds one claimed batch outside any transaction, then writes back.
    A provider error fails the batch (backoff); a failure in the database
    write propagates, and the leases expire for another try."""
    try:
        result = embedder.embed([Item(c.entity_type, c.text) for c in batch])
    except EmbeddingError as exc:
        stats.failed += len(batch)
        stats.dead_lettered += queue.fail(conn, worker_id, batch, f"{type(exc).__name__}: {exc}")
        log.warning("embedding failed for %d rows: %s", len(batch), exc)
        return
    stats.written += queue.complete(conn, worker_id, embedder.model, batch, result.vectors)
    queue.record_usage(conn, embedder.model, result.requests, len(batch), result.tokens)


def drain(conn: psycopg.Connection, embedder: Embedder, worker_id: str, *,
          batch_size: int = 64, lease_seconds: float = 300.0,
          progress: Callable[[DrainStats], None] | None = None) -> DrainStats:
    stats = DrainStats()
    while True:
        batch = queue.claim(conn, worker_id, batch_size, lease_seconds)
        if not batch:
            return stats
        stats.claimed += len(batch)
        stats.batches += 1
        process_batch(conn, embedder, worker_id, batch, stats)
        if progress:
            progress(stats)
