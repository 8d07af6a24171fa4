"""One claimed batch: embed it (identical texts once, a rejected batch
bisected) and write it back (the rows the database refuses bisected out and
charged an attempt, a lost deadlock retried). `jobmatch worker` (worker.py)
runs embed_batch and write_back in its own loop (signals, budget, progress,
NOTIFY), with the write-back of one batch overlapping the next batch's
embedding. drain() is the simplest correct consumer: claim, embed, complete,
until the queue has nothing ready (the demo and bench/quality use it)."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import psycopg

from . import queue
from .embedders import Embedder, EmbeddingError, Item, ProviderUnavailable
from .logs import event

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
    """Vectors for claimed rows, paid for and ready to be written back: each
    row's profile vector and its role vector (None: the row has no role text)."""
    batch: list[queue.Claimed]
    vectors: np.ndarray
    role_vectors: list


def _texts(c: queue.Claimed) -> list[tuple[str, str]]:
    """What one row sends: its profile text, then its role text if it has one."""
    return [(c.entity_type, c.text)] + ([(c.entity_type, c.role_text)] if c.role_text else [])


def embed_batch(conn: psycopg.Connection, embedder: Embedder, worker_id: str,
                batch: list[queue.Claimed], stats: DrainStats,
                fail=queue.fail) -> list[ReadyToWrite]:
    """Embeds one claimed batch outside any transaction. A rejected batch is
    bisected, so one bad row fails alone (backoff, then dead letter) and the
    rest of its batch is returned (`fail`: the queue's, queue.fail_target for
    a target model's rows). ProviderUnavailable (incl. BadResponse)
    and ProviderAuthError propagate: the provider, not a row, is at fault and
    the caller decides."""
    # Both texts of a row go in the same call, side by side (so in the same
    # request unless the batch is split); identical texts (reposted jobs,
    # seekers with default profiles, a job title that is another job's) are
    # paid for once.
    unique = list(dict.fromkeys(key for c in batch for key in _texts(c)))
    try:
        result = embedder.embed([Item(kind, text) for kind, text in unique])
    except ProviderUnavailable:
        raise
    except EmbeddingError as exc:
        # more than one distinct row (its texts) to tell apart: bisect the rows
        if len({(c.entity_type, c.text) for c in batch}) > 1:
            mid = len(batch) // 2
            log.info("embedding rejected for %d rows, bisecting: %s", len(batch), exc)
            return (embed_batch(conn, embedder, worker_id, batch[:mid], stats, fail)
                    + embed_batch(conn, embedder, worker_id, batch[mid:], stats, fail))
        stats.failed += len(batch)  # one row's texts, maybe several rows
        stats.dead_lettered += fail(conn, worker_id, batch, f"{type(exc).__name__}: {exc}")
        log.warning("embedding failed for %s %s: %s", batch[0].entity_type,
                    ", ".join(str(c.entity_id) for c in batch), exc)
        return []
    stats.requests += result.requests
    stats.tokens += result.tokens
    # Spend is recorded at once: it was incurred even if the write-back fails.
    queue.record_usage(conn, embedder.model, result.requests, len(unique), result.tokens)
    row_of = {key: i for i, key in enumerate(unique)}
    return [ReadyToWrite(batch, result.vectors[[row_of[(c.entity_type, c.text)] for c in batch]],
                         [result.vectors[row_of[(c.entity_type, c.role_text)]]
                          if c.role_text else None for c in batch])]


@dataclass
class Refused:
    """Rows the database refused to write (a data error for these rows alone:
    an application's trigger, a constraint), with its message: the caller
    charges them an attempt (queue.fail)."""
    batch: list[queue.Claimed]
    error: str


def write_back(conn: psycopg.Connection, worker_id: str, model: str, parts: list[ReadyToWrite],
               stats: DrainStats) -> list[Refused]:
    """Stores the vectors whose text is still current. When the database
    refuses a write for what is in it (a data error), the rows are bisected
    and written again with the same vectors, so every row it accepts is
    written and only the refused ones are returned. Any other failure (the
    connection, a lock held too long, the model switched, missing rights)
    propagates, and the leases expire for another try."""
    refused: list[Refused] = []
    for part in parts:
        _write_bisecting(conn, worker_id, model, part.batch, part.vectors, part.role_vectors,
                         stats, refused)
    return refused


def _write_bisecting(conn, worker_id, model, batch, vectors, roles, stats, refused) -> None:
    try:
        stats.written += _complete(conn, worker_id, model, batch, vectors, roles)
    except psycopg.Error as exc:
        if not _refuses_rows(conn, model, exc):
            raise
        if len(batch) == 1:
            message = exc.diag.message_primary or str(exc)
            refused.append(Refused(batch, f"database: {message} (SQLSTATE {exc.sqlstate})"))
            event(log, "write-back refused", logging.WARNING, entity_type=batch[0].entity_type,
                  entity_id=batch[0].entity_id, error=message, sqlstate=exc.sqlstate)
            return
        mid = len(batch) // 2
        event(log, "write-back refused, bisecting", rows=len(batch),
              error=exc.diag.message_primary or str(exc), sqlstate=exc.sqlstate)
        _write_bisecting(conn, worker_id, model, batch[:mid], vectors[:mid], roles[:mid],
                         stats, refused)
        _write_bisecting(conn, worker_id, model, batch[mid:], vectors[mid:], roles[mid:],
                         stats, refused)


# SQLSTATE classes that say nothing about the rows written: the connection,
# the server, rights, missing objects, locks and rollbacks (retried above).
NOT_ABOUT_ROWS = {"08", "0A", "25", "28", "3D", "3F", "40", "42", "53", "55", "57", "58",
                  "F0", "HV"}


def _refuses_rows(conn: psycopg.Connection, model: str, exc: psycopg.Error) -> bool:
    """Whether `exc` may be about some rows of the write only: a data error
    (class 22), a constraint (23), an exception an application's trigger
    raised (P0001, or any SQLSTATE it picked), a row too big (54). Not a lost
    connection, a deadlock or lock timeout, missing rights or objects, nor
    complete_embeddings refusing the whole batch because the active model
    changed (22023 with another model active). Bisecting a failure that
    every row shares only costs write attempts: each row ends up charged."""
    if isinstance(exc, psycopg.OperationalError) or not exc.sqlstate:
        return False
    if exc.sqlstate[:2] in NOT_ABOUT_ROWS:
        return False
    if isinstance(exc, psycopg.errors.InvalidParameterValue):
        try:
            with conn.transaction():
                row = conn.execute("SELECT model FROM embedding_models WHERE is_active").fetchone()
        except psycopg.Error:
            return False
        return row is not None and row[0] == model
    return True


def process_batch(conn: psycopg.Connection, embedder: Embedder, worker_id: str,
                  batch: list[queue.Claimed], stats: DrainStats) -> None:
    """Embeds one claimed batch, then writes it back on the same connection."""
    ready = embed_batch(conn, embedder, worker_id, batch, stats)
    charge_refused(conn, worker_id, write_back(conn, worker_id, embedder.model, ready, stats),
                   stats)


def charge_refused(conn: psycopg.Connection, worker_id: str, refused: list[Refused],
                   stats: DrainStats) -> None:
    """An attempt for each refused row (backoff, then dead letters), one
    fail_embeddings call per distinct error."""
    by_error: dict[str, list[queue.Claimed]] = {}
    for part in refused:
        by_error.setdefault(part.error, []).extend(part.batch)
    for error, rows in by_error.items():
        stats.failed += len(rows)
        stats.dead_lettered += queue.fail(conn, worker_id, rows, error)


def _complete(conn, worker_id, model, batch, vectors, roles) -> int:
    """queue.complete, retried when PostgreSQL picks the write-back as the
    victim of a deadlock with an application writer (or it ran into a
    lock_timeout or a serialization failure): the vectors are still good and
    complete re-checks every text, so trying again is safe; giving up would
    throw paid-for vectors away (the caller would reconnect and re-embed)."""
    for attempt in range(WRITE_TRIES):
        try:
            return queue.complete(conn, worker_id, model, batch, vectors, roles)
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


def drain_target(conn: psycopg.Connection, embedder: Embedder, worker_id: str, *,
                 batch_size: int = 64, lease_seconds: float = 300.0) -> DrainStats:
    """drain() for the target model of a switch (jobmatch model add): its
    queue until nothing is ready, vectors stored beside the serving ones."""
    stats = DrainStats()
    while batch := queue.claim_target(conn, worker_id, batch_size, lease_seconds):
        stats.claimed += len(batch)
        stats.batches += 1
        for part in embed_batch(conn, embedder, worker_id, batch, stats, fail=queue.fail_target):
            stats.written += queue.complete_target(conn, worker_id, embedder.model, part.batch,
                                                   part.vectors, part.role_vectors)
    return stats
