"""Thin Python side of the SQL queue API in db/functions/20_queue.sql.
Each call is its own short transaction: nothing is held open while the
provider is asked for vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import psycopg

CHANNEL = "jobmatch_embedding_queue"


@dataclass(frozen=True)
class Claimed:
    entity_type: str
    entity_id: int
    text: str  # the profile text
    text_hash: object  # uuid.UUID, covering both texts
    attempts: int
    role_text: str | None = None  # embedded on its own too; None: no role vector


def _run(conn: psycopg.Connection, query: str, params: Sequence) -> list[tuple]:
    with conn.transaction():
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


# The queue API's calls, one body each: `queue` names the SQL functions of
# the active model's queue ('embedding') or of a blue/green switch's target
# ('target', db/functions/28_target_queue.sql, its vectors stored beside the
# serving ones); both take and return the same things.
_FUNCTIONS = {
    "embedding": ("claim_embedding_batch", "complete_embeddings", "fail_embeddings",
                  "release_embeddings"),
    # the same queue's low-priority rows only (batch_api.py)
    "backfill": ("claim_embedding_backfill", "complete_embeddings", "fail_embeddings",
                 "release_embeddings"),
    "target": ("claim_target_embeddings", "complete_target_embeddings",
               "fail_target_embeddings", "release_target_embeddings"),
}


def _claim(conn, queue: str, worker_id: str, limit: int, lease_seconds: float) -> list[Claimed]:
    fn = _FUNCTIONS[queue][0]
    rows = _run(conn, f"SELECT * FROM {fn}(%s, %s, make_interval(secs => %s))",
                [worker_id, limit, lease_seconds])
    return [Claimed(*row) for row in rows]


def _complete(conn, queue: str, worker_id: str, model: str, claimed: Sequence[Claimed],
              vectors: Sequence, role_vectors: Sequence | None) -> int:
    if not claimed:
        return 0
    roles = None
    if role_vectors is not None:
        roles = [None if v is None else np.asarray(v, dtype=np.float32) for v in role_vectors]
    ((written,),) = _run(
        conn,
        f"SELECT {_FUNCTIONS[queue][1]}(%s, %s, %s, %s, %s, %b, %b::vector[])",
        [worker_id, model, [c.entity_type for c in claimed], [c.entity_id for c in claimed],
         [c.text_hash for c in claimed], [np.asarray(v, dtype=np.float32) for v in vectors],
         roles],
    )
    return written


def _fail(conn, queue: str, worker_id: str, claimed: Sequence[Claimed], error: str) -> int:
    if not claimed:
        return 0
    ((dead,),) = _run(conn, f"SELECT {_FUNCTIONS[queue][2]}(%s, %s, %s, %s)",
                      [worker_id, [c.entity_type for c in claimed],
                       [c.entity_id for c in claimed], error])
    return dead


def _release(conn, queue: str, worker_id: str, claimed: Sequence[Claimed] | None) -> int:
    types = ids = None
    if claimed is not None:
        types = [c.entity_type for c in claimed]
        ids = [c.entity_id for c in claimed]
    ((n,),) = _run(conn, f"SELECT {_FUNCTIONS[queue][3]}(%s, %s, %s)", [worker_id, types, ids])
    return n


def claim(conn: psycopg.Connection, worker_id: str, limit: int,
          lease_seconds: float = 300.0) -> list[Claimed]:
    return _claim(conn, "embedding", worker_id, limit, lease_seconds)


def complete(conn: psycopg.Connection, worker_id: str, model: str,
             claimed: Sequence[Claimed], vectors: Sequence,
             role_vectors: Sequence | None = None) -> int:
    """Writes vectors whose text is still current, each row's role vector
    (None where it has no role text) with its profile vector; returns how
    many rows were written. role_vectors None: none sent (the rows are
    written without, and match with a neutral role term)."""
    return _complete(conn, "embedding", worker_id, model, claimed, vectors, role_vectors)


def fail(conn: psycopg.Connection, worker_id: str, claimed: Sequence[Claimed],
         error: str) -> int:
    """Counts a failed attempt (backoff); returns how many were dead-lettered."""
    return _fail(conn, "embedding", worker_id, claimed, error)


def release(conn: psycopg.Connection, worker_id: str,
            claimed: Sequence[Claimed] | None = None) -> int:
    """Gives leases back without counting an attempt; None = all of this worker's."""
    return _release(conn, "embedding", worker_id, claimed)


def record_usage(conn: psycopg.Connection, model: str, requests: int, inputs: int,
                 tokens: int) -> None:
    _run(conn, "SELECT record_embedding_usage(%s, %s, %s, %s)", [model, requests, inputs, tokens])


def pending(conn: psycopg.Connection) -> int:
    ((n,),) = _run(conn, "SELECT count(*) FROM embedding_queue", [])
    return n


# The target model's queue during a blue/green switch: the same calls.
def claim_target(conn: psycopg.Connection, worker_id: str, limit: int,
                 lease_seconds: float = 300.0) -> list[Claimed]:
    return _claim(conn, "target", worker_id, limit, lease_seconds)


def complete_target(conn: psycopg.Connection, worker_id: str, model: str,
                    claimed: Sequence[Claimed], vectors: Sequence,
                    role_vectors: Sequence | None = None) -> int:
    return _complete(conn, "target", worker_id, model, claimed, vectors, role_vectors)


def fail_target(conn: psycopg.Connection, worker_id: str, claimed: Sequence[Claimed],
                error: str) -> int:
    return _fail(conn, "target", worker_id, claimed, error)


def release_target(conn: psycopg.Connection, worker_id: str,
                   claimed: Sequence[Claimed] | None = None) -> int:
    return _release(conn, "target", worker_id, claimed)
