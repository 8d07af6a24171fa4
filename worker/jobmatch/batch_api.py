"""`jobmatch backfill --batch-api`: the queue's low-priority rows (refreshes,
model switches, a first backfill) through OpenAI's Batch API, at half the
price, with results within 24 hours. Fresh edits (priority 0) keep going
through `jobmatch worker`.

One round: every open batch the database records is looked at (completed:
its vectors are written back through complete_embeddings, with the same hash
check as the worker's; failed, expired or cancelled: its rows are released);
then the low-priority rows still queued are claimed (claim_embedding_backfill:
leased for 25 hours, so no worker takes them meanwhile) and submitted as new
batches of at most 50,000 requests and 190 MB each, recorded in
embedding_api_batches before anything else happens, so a restarted backfill
resumes from the database. With --target, the rows are a model switch's
target's (claim_target_embeddings, its side table: `jobmatch model add`),
the whole of its backfill at the Batch price."""

from __future__ import annotations

import io
import json
import logging
import secrets
import time
from dataclasses import dataclass, field

import numpy as np
import openai
import psycopg

from . import queue
from .embedders import EmbeddingError, check_vectors
from .logs import event
from .openai_embedder import _decode, truncate

log = logging.getLogger(__name__)

MAX_REQUESTS = 50_000  # the Batch API's limit per batch
MAX_FILE_BYTES = 190 * 1024 * 1024  # its input file limit is 200 MB
LEASE_SECONDS = 25 * 3600  # a batch may take 24 hours
WRITE_CHUNK = 1000
ROLE = "+role"  # a custom_id's end: the request carries the row's role text too
ENDED = {"failed", "expired", "cancelled"}


def _custom_id(c: queue.Claimed) -> str:
    return f"{c.entity_type}:{c.entity_id}{ROLE if c.role_text else ''}"


@dataclass
class RoundStats:
    submitted: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    written: int = 0
    failed: int = 0


class BatchBackfill:
    """`queue_kind`: "backfill" (the active model's low-priority rows) or
    "target" (a switch's target's rows): queue.py's calls of that queue."""

    def __init__(self, conn: psycopg.Connection, client: openai.OpenAI, name: str,
                 dimensions: int, model: str, send_dimensions: bool,
                 max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_FILE_BYTES,
                 max_tokens_per_input: int = 8191, queue_kind: str = "backfill"):
        self.conn, self.client, self.queue_kind = conn, client, queue_kind
        self.name, self.dimensions, self.model = name, dimensions, model
        self.send_dimensions = send_dimensions
        self.max_requests = max(1, min(max_requests, MAX_REQUESTS))
        self.max_bytes, self.max_tokens_per_input = max_bytes, max_tokens_per_input

    def round(self, submit: bool = True) -> RoundStats:
        stats = RoundStats()
        for batch_id, worker in self.conn.execute(
                "SELECT batch_id, worker FROM embedding_api_batches WHERE status = 'submitted'"
                " AND model = %s ORDER BY submitted_at", [self.model]).fetchall():
            self._poll(batch_id, worker, stats)
        while submit:
            batch_id = self._submit()
            if batch_id is None:
                break
            stats.submitted.append(batch_id)
            stats.pending.append(batch_id)
        return stats

    # submitting -----------------------------------------------------------------
    def _line(self, custom_id: str, texts: list[str]) -> bytes:
        """One request per row: its profile text, and its role text when it
        has one (custom_id ends in ROLE then: two vectors are expected back)."""
        body = {"model": self.name,
                "input": [truncate(t, self.max_tokens_per_input) for t in texts],
                "encoding_format": "base64"}
        if self.send_dimensions:
            body["dimensions"] = self.dimensions
        return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/embeddings",
                           "body": body}).encode() + b"\n"

    def _submit(self) -> str | None:
        """Claims up to one batch of low-priority rows and submits it; None
        when there is nothing left."""
        worker = f"batch-api:{secrets.token_hex(6)}"
        rows = queue._claim(self.conn, self.queue_kind, worker, self.max_requests, LEASE_SECONDS)
        if not rows:
            return None
        lines, kept, size = [], [], 0
        for c in rows:
            line = self._line(_custom_id(c), [c.text, c.role_text] if c.role_text else [c.text])
            if size + len(line) > self.max_bytes and lines:
                break  # the rest waits for the next batch
            lines.append(line)
            kept.append(c)
            size += len(line)
        if len(kept) < len(rows):
            queue._release(self.conn, self.queue_kind, worker, rows[len(kept):])
        try:
            upload = self.client.files.create(file=("jobmatch-backfill.jsonl",
                                                    io.BytesIO(b"".join(lines))), purpose="batch")
            batch = self.client.batches.create(input_file_id=upload.id, endpoint="/v1/embeddings",
                                               completion_window="24h")
        except openai.OpenAIError:
            # no attempt: the provider failed
            queue._release(self.conn, self.queue_kind, worker, kept)
            raise
        with self.conn.transaction():
            self.conn.execute(
                "SELECT record_api_batch(%s, %s, %s, %s, %s, %s, %s, %s)",
                [batch.id, worker, self.model, upload.id,
                 [_custom_id(c) for c in kept],
                 [c.entity_type for c in kept], [c.entity_id for c in kept],
                 [c.text_hash for c in kept]])
        event(log, "batch submitted", batch=batch.id, requests=len(kept), bytes=size)
        return batch.id

    # results ----------------------------------------------------------------------
    def _poll(self, batch_id: str, worker: str, stats: RoundStats) -> None:
        batch = self.client.batches.retrieve(batch_id)
        if batch.status == "completed":
            written, failed = self._apply(batch_id, worker, batch)
            stats.written += written
            stats.failed += failed
            stats.applied.append(batch_id)
        elif batch.status in ENDED:
            self.conn.execute("SELECT finish_api_batch(%s, %s, %s)",
                              [batch_id, batch.status, f"batch {batch.status}"])
            event(log, "batch ended without results; its rows are released",
                  logging.WARNING, batch=batch_id, status=batch.status)
            stats.released.append(batch_id)
        else:
            stats.pending.append(batch_id)

    def _results(self, file_id: str | None) -> list[dict]:
        if not file_id:
            return []
        text = self.client.files.content(file_id).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _apply(self, batch_id: str, worker: str, batch) -> tuple[int, int]:
        """Writes a completed batch's vectors (hash-checked); each request that
        failed charges its row an attempt, with the provider's error."""
        rows = {cid: queue.Claimed(t, i, "", h, 0) for cid, t, i, h in self.conn.execute(
            "SELECT custom_id, entity_type, entity_id, text_hash FROM embedding_api_batch_rows"
            " WHERE batch_id = %s", [batch_id]).fetchall()}
        good: list[tuple[queue.Claimed, np.ndarray, np.ndarray | None]] = []
        bad: dict[str, list[queue.Claimed]] = {}
        tokens = 0
        for result in self._results(batch.output_file_id) + self._results(batch.error_file_id):
            row = rows.get(result.get("custom_id"))
            if row is None:
                continue
            response = result.get("response") or {}
            body = response.get("body") or {}
            try:
                if response.get("status_code") != 200:
                    message = (body.get("error") or result.get("error") or {}).get("message")
                    raise EmbeddingError(f"HTTP {response.get('status_code')}: {message}")
                data = sorted(body["data"], key=lambda d: d["index"])
                vectors = check_vectors([_decode(d["embedding"]) for d in data],
                                        2 if result["custom_id"].endswith(ROLE) else 1,
                                        self.dimensions)
                tokens += (body.get("usage") or {}).get("total_tokens") or 0
                good.append((row, vectors[0], vectors[1] if len(vectors) == 2 else None))
            except (EmbeddingError, KeyError, TypeError, ValueError) as exc:
                bad.setdefault(f"batch {batch_id}: {exc}", []).append(row)
        written = 0
        for start in range(0, len(good), WRITE_CHUNK):
            chunk = good[start:start + WRITE_CHUNK]
            written += queue._complete(self.conn, self.queue_kind, worker, self.model,
                                       [c for c, _, _ in chunk],
                                       np.vstack([v for _, v, _ in chunk]),
                                       [r for _, _, r in chunk])
        for error, failed in bad.items():
            queue._fail(self.conn, self.queue_kind, worker, failed, error)
        # rows with no result at all go back to the queue as they were
        queue._release(self.conn, self.queue_kind, worker, None)
        with self.conn.transaction():
            self.conn.execute("SELECT record_batch_usage(%s, %s, %s)",  # inputs: texts
                              [self.model, sum(1 + (r is not None) for _, _, r in good), tokens])
            self.conn.execute("SELECT finish_api_batch(%s, 'applied', NULL)", [batch_id])
        failed_rows = sum(map(len, bad.values()))
        event(log, "batch applied", batch=batch_id, vectors=len(good), written=written,
              failed=failed_rows, tokens=tokens)
        return written, failed_rows


def run(conn: psycopg.Connection, backfill: BatchBackfill, wait: bool, poll_interval: float,
        sleep=time.sleep) -> RoundStats:
    """One round, or (wait) rounds until no batch is open."""
    total = RoundStats()
    submit = True
    while True:
        stats = backfill.round(submit=submit)
        for name in ("submitted", "applied", "released"):
            getattr(total, name).extend(getattr(stats, name))
        total.written += stats.written
        total.failed += stats.failed
        total.pending = stats.pending
        if not wait or not stats.pending:
            return total
        submit = False  # rows freed meanwhile wait for the next run
        sleep(poll_interval)
