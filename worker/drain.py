"""The simplest correct consumer: claim, embed, complete, until the queue
has nothing ready. The demo uses drain(); `jobmatch worker` (runner.py)
runs embed_batch and write_back in its own loop (signals, budget, progress,
NOTIFY), with the write-back of one batch overlapping the next batch's
embedding."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import psycopg

from . import queue
from .embedders import Embedder, EmbeddingError, Item
from .openai_embedder import ProviderUnavailable

log = logging.getLogger(__name__)

WRITE_TRIES = 4  # a write-back that loses a deadlock is retried with the same vectors
RETRY_WRITE = {"40P01", "40001", "55P03"}


@dataclass
class DrainStats:
    claimed: int = 0
    written: int = 0
    failed: int = 0
    dead_lettered: int = 0
    batches: int = 0
    requests: int = 0
    tokens: int = 0


@dataclass
class ReadyToWrite:
    """Vectors for claimed rows, paid for and ready to be written back."""
    batch: list[queue.Claimed]
    vectors: np.ndarray


def embed_batch(conn: psycopg.Connection, embedder: Embedder, worker_id: str,
                batch: list[queue.Claimed], stats: DrainStats) -> list[ReadyToWrite]:
    """Embeds one claimed batch outside any transaction. A rejected batch is
    bisected, so one bad row fails alone (backoff, then dead letter) and the
    rest of its batch is returned. ProviderUnavailable (incl. BadResponse)
    and ProviderAuthError propagate: the provider, not a row, is at fault and
    the caller decides."""
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
            return (embed_batch(conn, embedder, worker_id, batch[:mid], stats)
                    + embed_batch(conn, embedder, worker_id, batch[mid:], stats))
        stats.failed += len(batch)  # one text, maybe several rows
        stats.dead_lettered += queue.fail(conn, worker_id, batch, f"{type(exc).__name__}: {exc}")
        log.warning("embedding failed for %s %s: %s", batch[0].entity_type,
                    ", ".join(str(c.entity_id) for c in batch), exc)
        return []
    stats.requests += result.requests
    stats.tokens += result.tokens
    # Spend is recorded at once: it was incurred even if the write-back fails.
    queue.record_usage(conn, embedder.model, result.requests, len(unique), result.tokens)
    row_of = {key: i for i, key in enumerate(unique)}
    return [ReadyToWrite(batch, result.vectors[[row_of[(c.entity_type, c.text)] for c in batch]])]


def write_back(conn: psycopg.Connection, worker_id: str, model: str, parts: list[ReadyToWrite],
               stats: DrainStats) -> None:
    """Stores the vectors whose text is still current. A failure in the
    database propagates, and the leases expire for another try."""
    for part in parts:
        stats.written += _complete(conn, worker_id, model, part.batch, part.vectors)


def process_batch(conn: psycopg.Connection, embedder: Embedder, worker_id: str,
                  batch: list[queue.Claimed], stats: DrainStats) -> None:
    """Embeds one claimed batch, then writes it back on the same connection."""
    write_back(conn, worker_id, embedder.model,
               embed_batch(conn, embedder, worker_id, batch, stats), stats)


def _complete(conn, worker_id, model, batch, vectors) -> int:
    """queue.complete, retried when PostgreSQL picks the write-back as the
    victim of a deadlock with an application writer (or it ran into a
    lock_timeout or a serialization failure): the vectors are still good and
    complete re-checks every text, so trying again is safe; giving up would
    throw paid-for vectors away (the caller would reconnect and re-embed)."""
    for attempt in range(WRITE_TRIES):
        try:
            return queue.complete(conn, worker_id, model, batch, vectors)
        except psycopg.OperationalError as exc:
            # 40P01 deadlock, 40001 serialization failure, 55P03 lock_timeout
            if exc.sqlstate not in RETRY_WRITE or attempt == WRITE_TRIES - 1:
                raise
            log.info("write-back of %d rows rolled back (%s), retrying", len(batch),
                     exc.sqlstate)
            time.sleep(random.uniform(0.05, 0.2) * 2 ** attempt)
    raise AssertionError("unreachable")


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
