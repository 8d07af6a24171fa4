"""The simplest correct consumer: claim, embed, complete, until the queue
has nothing ready. The demo uses drain(); `jobmatch worker` (runner.py)
runs process_batch in its own loop (signals, budget, progress, NOTIFY)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import psycopg

from . import queue
from .embedders import Embedder, EmbeddingError, Item
from .openai_embedder import ProviderUnavailable

log = logging.getLogger(__name__)


@dataclass
class DrainStats:
    claimed: int = 0
    written: int = 0
    failed: int = 0
    dead_lettered: int = 0
    batches: int = 0
    requests: int = 0
    tokens: int = 0


def process_batch(conn: psycopg.Connection, embedder: Embedder, worker_id: str,
                  batch: list[queue.Claimed], stats: DrainStats) -> None:
    """Embeds one claimed batch outside any transaction, then writes back.
    A rejected batch is bisected, so one bad row fails alone (backoff, then
    dead letter) and the rest of its batch completes. ProviderUnavailable
    (incl. BadResponse) and ProviderAuthError propagate: the provider, not a
    row, is at fault and the caller decides. A failure in the database write
    propagates too, and the leases expire for another try."""
    # Identical texts (reposted jobs, seekers with default profiles) are paid for once.
    unique = list(dict.fromkeys((c.entity_type, c.text) for c in batch))
    try:
        result = embedder.embed([Item(kind, text) for kind, text in unique])
    except ProviderUnavailable:
        raise
    except EmbeddingError as exc:
        if len(unique) > 1:
            mid = len(batch) // 2
            log.info("embedding rejected for %d rows, bisecting: %s", len(batch), exc)
            process_batch(conn, embedder, worker_id, batch[:mid], stats)
            process_batch(conn, embedder, worker_id, batch[mid:], stats)
            return
        stats.failed += len(batch)  # one text, maybe several rows
        stats.dead_lettered += queue.fail(conn, worker_id, batch, f"{type(exc).__name__}: {exc}")
        log.warning("embedding failed for %s %s: %s", batch[0].entity_type,
                    ", ".join(str(c.entity_id) for c in batch), exc)
        return
    stats.requests += result.requests
    stats.tokens += result.tokens
    # Spend is recorded first: it was incurred even if the write-back fails.
    queue.record_usage(conn, embedder.model, result.requests, len(unique), result.tokens)
    row_of = {key: i for i, key in enumerate(unique)}
    vectors = result.vectors[[row_of[(c.entity_type, c.text)] for c in batch]]
    stats.written += queue.complete(conn, worker_id, embedder.model, batch, vectors)


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
