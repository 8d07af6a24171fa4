"""`jobmatch worker`: keeps every vector in step with its profile text.

One loop: now and then queue stale rows (refresh); drain what is ready
(claim -> embed outside any transaction -> complete); then sleep until a
NOTIFY, the poll timeout or a stop, whichever comes first. One batch's
write-back runs on its own connection while the next batch is claimed and
embedded: the database and the provider work at the same time. The SQL queue API
does the hard parts (SKIP LOCKED leases, stale-write protection, backoff,
dead letters); this module decides when to call it and what to do when the
provider misbehaves.

Exit codes: 0 drained (--once) or stopped by a signal; 1 an error (with
--once: database unreachable or provider down); 2 configuration (model
mismatch, no model recorded, missing API key, a right the login role lacks);
3 the provider rejected the API key (retrying cannot help: systemd's
RestartPreventExitStatus=3).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import secrets
import select
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta

import psycopg

from . import db, listen_probe, queue
from .batch import DrainStats, charge_refused, embed_batch, write_back
from .embedders import ProviderAuthError, ProviderUnavailable
from .logs import event

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_AUTH = 0, 1, 2, 3
PAUSE_CAP = 600.0  # longest pause while the provider is down
RECONNECT_CAP = 60.0  # longest wait between database reconnects
# Dead peers (a failed-over primary, a dropped NAT entry) are noticed in
# about a minute instead of the kernel's two hours.
CONNECT_OPTIONS = dict(keepalives=1, keepalives_idle=30, keepalives_interval=10,
                       keepalives_count=3, connect_timeout=10)


# What the worker calls and reads (jobmatch_setup_roles in db/functions/70_roles.sql
# grants exactly these to jobmatch_worker). Checked at start: a missing right
# is a person's job to fix (exit 2), not a batch to embed and then charge.
WORKER_FUNCTIONS = ("claim_embedding_batch", "complete_embeddings", "fail_embeddings",
                    "release_embeddings", "record_embedding_usage",
                    # a blue/green model switch's target (28_target_queue.sql)
                    "claim_target_embeddings", "complete_target_embeddings",
                    "fail_target_embeddings", "release_target_embeddings")
REFRESH_FUNCTION = "enqueue_stale_embeddings"  # unless --refresh-interval 0
WORKER_TABLES = ("embedding_models", "embedding_queue")
BUDGET_FUNCTION = "embedding_budget_state"  # with --daily-token-budget / --daily-budget-usd


class Stopping(Exception):
    """A stop was requested while the worker was waiting to retry."""


class WorkerExit(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def backoff(attempt: int, base: float, cap: float) -> float:
    """Capped exponential backoff with jitter, so restarted workers spread out."""
    return min(cap, base * 2 ** attempt) * random.uniform(0.5, 1.0)


class StopSignal:
    """A latch that wakes select() (a self-pipe) and cuts retry sleeps short.
    set() only flips a flag and writes a byte: safe from a signal handler."""

    def __init__(self):
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        self.is_set = False
        self.signum: int | None = None

    def set(self, signum: int | None = None) -> None:
        self.is_set, self.signum = True, self.signum or signum
        try:
            os.write(self._w, b"x")  # never drained: stays readable, a latch
        except OSError:
            pass

    def fileno(self) -> int:
        return self._r

    def wait(self, timeout: float) -> bool:
        """Sleeps up to `timeout` seconds; True once a stop was requested."""
        if not self.is_set and timeout > 0:
            select.select([self._r], [], [], timeout)
        return self.is_set

    def sleep(self, seconds: float) -> None:
        """The embedder's retry sleep: a stop ends it by raising Stopping."""
        if self.wait(seconds):
            raise Stopping()

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


@dataclass
class Settings:
    batch_size: int = 400
    lease_seconds: float = 300.0
    poll_interval: float = 5.0
    refresh_interval: float = 300.0  # 0: never
    refresh_after_days: float | None = None
    refresh_batch: int = 1000
    daily_token_budget: int | None = None
    daily_budget_usd: float | None = None
    progress_interval: float = 5.0
    pause_seconds: float = 10.0
    once: bool = False


def _model_flags(model: str, provider: str, dimensions: int) -> str:
    if provider == "local":
        return "--embedder local"
    return f"--embedder openai --model {model.split('@')[0]} --dimensions {dimensions}"


class Worker:
    def __init__(self, dsn: str, embedder, settings: Settings | None = None,
                 stop: StopSignal | None = None, worker_id: str | None = None,
                 metrics=None, make_embedder=None):
        self.dsn, self.embedder = dsn, embedder
        # During a model switch the worker embeds for both models: the one it
        # is configured for, and the other (active or target) made by
        # make_embedder(model, provider, dimensions) from the database's row.
        self.configured = embedder
        self.make_embedder = make_embedder
        self._made: dict[str, object] = {}
        self.target = None  # the target model's embedder, while there is one
        self._models: tuple | None = None  # (active row, target row) last seen
        self.metrics = metrics  # jobmatch.metrics.WorkerMetrics, or None
        self.s = settings or Settings()
        self.stop = stop or StopSignal()
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
        self.conn: psycopg.Connection | None = None  # the queue API calls
        self.listen: psycopg.Connection | None = None  # LISTEN only, always idle
        self.write: psycopg.Connection | None = None  # write-backs, in the writer thread
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="jobmatch-write-back")
        self.stats = DrainStats()
        self._down = 0  # consecutive batches the provider was unavailable for
        self._over_budget = False

    # lifecycle -------------------------------------------------------------------
    def run(self) -> int:
        try:
            self._start()
            event(log, "worker started", worker=self.id, model=self.embedder.model,
                  provider=self.embedder.provider, **asdict(self.s))
            self._loop()
            return EXIT_OK
        except Stopping:
            return EXIT_OK
        except WorkerExit as exc:
            event(log, str(exc), logging.ERROR, worker=self.id, exit_code=exc.code)
            return exc.code
        except psycopg.errors.InsufficientPrivilege as exc:  # a right revoked while running
            event(log, f"jobmatch worker: role {self._role()}: {exc.diag.message_primary};"
                  f" GRANT {_worker_role()} TO {self._role()}", logging.ERROR, worker=self.id,
                  exit_code=EXIT_CONFIG)
            return EXIT_CONFIG
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        released = None
        if self.conn is not None and not self.conn.closed:
            try:  # nothing is in flight any more: give every lease back now
                released = queue.release(self.conn, self.id)
                released += queue.release_target(self.conn, self.id)
            except psycopg.Error:
                pass  # the leases expire instead
        event(log, "worker stopped", worker=self.id, signal=self.stop.signum, released=released,
              claimed=self.stats.claimed, written=self.stats.written, failed=self.stats.failed,
              dead_lettered=self.stats.dead_lettered, requests=self.stats.requests,
              tokens=self.stats.tokens)
        self._close()
        self._writer.shutdown()

    def _close(self) -> None:
        for c in (self.conn, self.listen, self.write):
            if c is not None:
                c.close()
        self.conn = self.listen = self.write = None

    def _connect(self) -> None:
        for attempt in itertools.count():
            try:
                opts = dict(CONNECT_OPTIONS, application_name=f"jobmatch-worker {self.id}"[:63])
                self.conn = db.connect(self.dsn, autocommit=True, **opts)
                self.write = db.connect(self.dsn, autocommit=True, **opts)
                self.listen = psycopg.connect(self.dsn, autocommit=True, **opts)
                self.listen.execute(f"LISTEN {queue.CHANNEL}")
                if not listen_probe.notifications_arrive(self.listen, self.conn):
                    raise WorkerExit(EXIT_CONFIG, listen_probe.MESSAGE)  # e.g. PgBouncer
                return
            except psycopg.OperationalError as exc:
                self._close()
                if self.s.once:
                    raise WorkerExit(EXIT_ERROR, f"cannot connect to the database: {exc}".strip())
                delay = backoff(attempt, 1.0, RECONNECT_CAP)
                event(log, "database unreachable, retrying", logging.WARNING,
                      error=str(exc).strip(), retry_in_s=round(delay, 1))
                if self.stop.wait(delay):
                    raise Stopping()

    def _start(self) -> None:
        """Connects and checks rights and model; a connection lost during the
        checks (a restart, a terminated backend) is retried like any other."""
        for attempt in itertools.count():
            self._connect()
            try:
                self._check_rights()
                self._check_model()
                return
            except psycopg.OperationalError as exc:
                self._close()
                if self.s.once:
                    raise WorkerExit(EXIT_ERROR, f"database error: {exc}".strip())
                delay = backoff(attempt, 0.5, RECONNECT_CAP)
                event(log, "database connection lost, reconnecting", logging.WARNING,
                      error=str(exc).strip(), retry_in_s=round(delay, 2))
                if self.stop.wait(delay):
                    raise Stopping()

    def _role(self) -> str:
        return (self.conn.info.user if self.conn is not None else None) or "?"

    def _check_rights(self) -> None:
        """Every right this worker's settings need, before anything is claimed:
        one line naming what is missing and the GRANT that gives it."""
        functions = list(WORKER_FUNCTIONS)
        if self.s.refresh_interval > 0:
            functions.append(REFRESH_FUNCTION)
        if self.s.daily_token_budget or self.s.daily_budget_usd:
            functions.append(BUDGET_FUNCTION)
        tables = list(WORKER_TABLES) + (["embedding_health"] if self.metrics else [])
        group = _worker_role()
        rows = self.conn.execute(
            """
            WITH me AS (SELECT current_user AS role,
                               (SELECT oid FROM pg_roles WHERE rolname = %(group)s) AS grp)
            SELECT 0 AS ord, 'schema' AS kind, 'public' AS name, 'public' AS object,
                   has_schema_privilege('public', 'USAGE') AS mine,
                   me.grp IS NOT NULL AND has_schema_privilege(me.grp, 'public', 'USAGE') AS its
            FROM me
            UNION ALL
            SELECT f.ord, 'function', f.name, p.oid::regprocedure::text,
                   p.oid IS NOT NULL AND has_function_privilege(p.oid, 'EXECUTE'),
                   me.grp IS NOT NULL AND p.oid IS NOT NULL
                       AND has_function_privilege(me.grp, p.oid, 'EXECUTE')
            FROM me, unnest(%(functions)s::text[]) WITH ORDINALITY AS f (name, ord)
            LEFT JOIN LATERAL (SELECT p.oid FROM pg_proc AS p
                               WHERE p.proname = f.name
                                 AND p.pronamespace = 'public'::regnamespace
                               ORDER BY has_function_privilege(p.oid, 'EXECUTE') DESC
                               LIMIT 1) AS p ON true
            UNION ALL
            SELECT 100 + t.ord, 'table', t.name, c.oid::regclass::text,
                   c.oid IS NOT NULL AND has_table_privilege(c.oid, 'SELECT'),
                   me.grp IS NOT NULL AND c.oid IS NOT NULL
                       AND has_table_privilege(me.grp, c.oid, 'SELECT')
            FROM me, unnest(%(tables)s::text[]) WITH ORDINALITY AS t (name, ord)
            LEFT JOIN pg_class AS c
                   ON c.relname = t.name AND c.relnamespace = 'public'::regnamespace
            ORDER BY 1
            """, {"group": group, "functions": functions, "tables": tables}).fetchall()
        role = self.conn.execute("SELECT current_user").fetchone()[0]
        flags = _model_flags(self.embedder.model, self.embedder.provider, self.embedder.dimensions)
        absent = [name for _, kind, name, obj, _, _ in rows if kind != "schema" and obj is None]
        if absent:
            raise WorkerExit(EXIT_CONFIG, f"jobmatch worker: this database has no "
                             f"{', '.join(absent)}: run `jobmatch migrate {flags}` first")
        lacking = [(kind, obj, its) for _, kind, _, obj, mine, its in rows if not mine]
        if not lacking:
            return
        verb = {"schema": "USAGE", "function": "EXECUTE", "table": "SELECT"}
        what = ", ".join(f"{verb[k]} on {'schema ' if k == 'schema' else ''}{o}"
                         for k, o, _ in lacking)
        if all(its for _, _, its in lacking):
            fix = f"GRANT {group} TO {role}"
        else:
            on = {"schema": "SCHEMA ", "function": "FUNCTION ", "table": ""}
            fix = "; ".join(f"GRANT {verb[k]} ON {on[k]}{o} TO {role}" for k, o, _ in lacking)
        raise WorkerExit(EXIT_CONFIG, f"jobmatch worker: role {role} lacks {what}; {fix}")

    def _check_model(self) -> None:
        """The database decides the model: vectors of two models never mix. A
        worker configured for the target of a model switch (or for the
        previous model, after a promotion) embeds the active model with an
        embedder made from its row, and its own model as the target."""
        try:
            rows = self.conn.execute(
                "SELECT model, provider, dimensions, is_active FROM embedding_models"
                " WHERE is_active OR is_target").fetchall()
        except psycopg.errors.UndefinedTable:
            rows = []
        except psycopg.errors.UndefinedColumn:  # a database from before migration 0017
            rows = [r + (True,) for r in self.conn.execute(
                "SELECT model, provider, dimensions FROM embedding_models WHERE is_active")]
        row = next((r[:3] for r in rows if r[3]), None)
        target = next((r[:3] for r in rows if not r[3]), None)
        self._models = (row, target)
        c = self.configured
        mine = (c.model, c.provider, c.dimensions)
        if row is None:
            raise WorkerExit(EXIT_CONFIG, "this database has no embedding model recorded: run "
                             f"`jobmatch migrate {_model_flags(*mine)}` first")
        if (row[0], row[2]) == (mine[0], mine[2]):
            self.embedder = c
        elif (target is not None and (target[0], target[2]) == (mine[0], mine[2])
              and self._embedder_for(row) is not None):
            self.embedder = self._embedder_for(row)
        else:
            raise WorkerExit(
                EXIT_CONFIG,
                f"model mismatch: this database embeds with {row[0]} ({row[1]}, {row[2]} dimensions) "
                f"but the worker is configured for {mine[0]} ({mine[1]}, {mine[2]} dimensions). "
                f"Fix: run the worker with `{_model_flags(*row)}`, or switch the database with "
                f"`jobmatch model add {mine[0]} --dimensions {mine[2]}` (blue/green, no downtime)"
                f" or `jobmatch migrate {_model_flags(*mine)} --switch-model` (re-embeds every row)")
        self.target = None
        if target is not None:
            self.target = (c if (target[0], target[2]) == (mine[0], mine[2])
                           else self._embedder_for(target))

    def _embedder_for(self, row: tuple):
        """An embedder for model row (model, provider, dimensions), or None
        (logged once) when this worker cannot make one."""
        model, provider, dims = row
        if model in self._made:
            return self._made[model]
        made = None
        try:
            if self.make_embedder is not None:
                made = self.make_embedder(model, provider, dims)
            if made is not None and (made.model, made.dimensions) != (model, dims):
                made = None
        except Exception as exc:  # noqa: BLE001 - a missing key, an unknown local model
            event(log, "cannot embed with this model", logging.WARNING, model=model,
                  error=str(exc))
            made = None
        if made is None:
            event(log, "this worker cannot embed a model of the switch: another worker must",
                  logging.WARNING, model=model, provider=provider, dimensions=dims)
        self._made[model] = made
        return made

    def _sync_models(self) -> None:
        """Notices a model added, promoted or dropped while running."""
        rows = self.conn.execute("SELECT model, provider, dimensions, is_active"
                                 " FROM embedding_models WHERE is_active OR is_target").fetchall()
        seen = (next((r[:3] for r in rows if r[3]), None),
                next((r[:3] for r in rows if not r[3]), None))
        if seen != self._models:
            event(log, "models changed", active=seen[0] and seen[0][0],
                  target=seen[1] and seen[1][0])
            self._check_model()

    # the loop --------------------------------------------------------------------
    def _loop(self) -> None:
        next_refresh = time.monotonic()  # once at start, then every refresh_interval
        lost = 0  # consecutive lost connections
        while not self.stop.is_set:
            try:
                if self.conn is None:
                    self._connect()
                    self._check_rights()
                    self._check_model()
                    queue.release(self.conn, self.id)  # the batch in flight was lost: retry it now
                if self.s.refresh_interval > 0 and time.monotonic() >= next_refresh:
                    self._refresh()
                    next_refresh = time.monotonic() + self.s.refresh_interval
                self._drain()
                self._observe()
                if self.s.once:
                    return
                timeout = self.s.poll_interval
                if self.s.refresh_interval > 0:
                    timeout = min(timeout, next_refresh - time.monotonic())
                self._wait(timeout)
                lost = 0
            except psycopg.OperationalError as exc:
                if self.s.once:
                    raise WorkerExit(EXIT_ERROR, f"database error: {exc}".strip())
                self._close()
                delay = backoff(lost, 0.5, RECONNECT_CAP)
                lost += 1
                event(log, "database connection lost, reconnecting", logging.WARNING,
                      error=str(exc).strip(), retry_in_s=round(delay, 2))
                self.stop.wait(delay)

    def _observe(self, force: bool = False) -> None:
        """Brings the Prometheus metrics up to date (with --metrics-port)."""
        if self.metrics is not None:
            # after work, at once; while idle, every metrics.HEALTH_INTERVAL
            force = force or self.metrics.sync(self.stats)
            self.metrics.observe_health(self.conn, self._over_budget, force)

    def _wait(self, timeout: float) -> None:
        """Until a NOTIFY, `timeout` or a stop. Polling backs NOTIFY up: a
        notification sent while the connection was down is never delivered."""
        if self._notified():
            return
        ready, _, _ = select.select([self.listen.fileno(), self.stop.fileno()], [], [],
                                    max(timeout, 0))
        if self.listen.fileno() in ready:
            self._notified()  # consume them; also raises if the connection died

    def _notified(self) -> bool:
        return sum(1 for _ in self.listen.notifies(timeout=0)) > 0

    def _refresh(self) -> None:
        """Low-priority re-embedding of stale rows, a bounded slice at a time."""
        (backlog,) = self.conn.execute(
            "SELECT count(*) FROM embedding_queue WHERE priority > 0").fetchone()
        if backlog >= self.s.refresh_batch:
            return  # the last slice is still being worked off: don't pile up
        days = self.s.refresh_after_days
        (queued,) = self.conn.execute(
            "SELECT enqueue_stale_embeddings(%s, 1, %s)",
            [timedelta(days=days) if days else None, self.s.refresh_batch]).fetchone()
        if queued:
            event(log, "refresh queued stale rows", rows=queued)

    def _budget_reached(self) -> bool:
        # today's spend of every model: the active one's and a switch's
        # target's (its backfill runs after the active queue) count together
        if not self.s.daily_token_budget and not self.s.daily_budget_usd:
            return False
        tokens, usd, reached = self.conn.execute(
            "SELECT * FROM embedding_budget_state(NULL, %s::bigint, %s::numeric)",
            [self.s.daily_token_budget, self.s.daily_budget_usd]).fetchone()
        if reached != self._over_budget:  # log the transitions only
            self._over_budget = reached
            event(log, "daily token budget reached, embedding paused" if reached
                  else "daily token budget available, embedding resumed",
                  logging.WARNING if reached else logging.INFO,
                  tokens_today=tokens, usd_today=float(usd), budget=self.s.daily_token_budget,
                  budget_usd=self.s.daily_budget_usd)
        return reached

    def _drain(self) -> None:
        """Batches until nothing is ready, a stop, or the budget is spent.
        At most one write-back is in flight, and every exit waits for it."""
        started = last = time.monotonic()
        first = done = self.stats.claimed
        writing = None
        try:
            while not self.stop.is_set and not self._budget_reached():
                batch = queue.claim(self.conn, self.id, self.s.batch_size, self.s.lease_seconds)
                if not batch:
                    # the active model's fresh and stale rows go first; the
                    # target's a batch at a time, then the active queue again.
                    # The active write-back in flight finishes first: the
                    # target's holds its rows FOR SHARE, and a fresh edit is
                    # in both queues (the active one would park it).
                    previous, writing = writing, None
                    self._finish(previous)
                    if self._target_round():
                        continue
                    break
                model = self.embedder.model  # the vectors' model, whatever changes meanwhile
                ready = self._embed(batch)
                previous, writing = writing, None
                self._finish(previous)
                if ready:
                    writing = (batch, self._writer.submit(self._write_back, ready, model), model)
                now = time.monotonic()
                if now - last >= self.s.progress_interval:
                    event(log, "progress", rows_done=self.stats.claimed,
                          rows_per_s=round((self.stats.claimed - done) / max(now - last, 1e-6), 1),
                          queue_left=queue.pending(self.conn))
                    last, done = now, self.stats.claimed
                self._observe()
        except BaseException:
            self._finish(writing, quiet=True)  # the first error is the one to report
            raise
        self._finish(writing)
        if self.stats.claimed > first:
            event(log, "drained", rows=self.stats.claimed - first,
                  seconds=round(time.monotonic() - started, 2), written=self.stats.written,
                  failed=self.stats.failed, queue_left=queue.pending(self.conn))

    def _embed(self, batch: list[queue.Claimed]) -> list:
        """The batch's vectors (batch.embed_batch), or [] when the provider
        failed it: released on a stop, failed (an attempt counted) when the
        provider is unavailable."""
        self.stats.claimed += len(batch)
        self.stats.batches += 1
        try:
            ready = embed_batch(self.conn, self.embedder, self.id, batch, self.stats)
            self._down = 0
            return ready
        except Stopping:
            queue.release(self.conn, self.id, batch)  # no attempt counted
        except ProviderAuthError as exc:
            queue.release(self.conn, self.id, batch)  # the rest on shutdown
            raise WorkerExit(EXIT_AUTH, f"{exc}; stopping, because retrying cannot help: "
                             "fix the key and restart the worker") from None
        except ProviderUnavailable as exc:  # incl. BadResponse
            self.stats.failed += len(batch)
            self.stats.dead_lettered += queue.fail(self.conn, self.id, batch,
                                                   f"{type(exc).__name__}: {exc}")
            if self.s.once:
                raise WorkerExit(EXIT_ERROR, f"provider unavailable: {exc}") from None
            pause = backoff(self._down, self.s.pause_seconds, PAUSE_CAP)
            self._down += 1
            event(log, "provider unavailable, pausing", logging.WARNING, error=str(exc),
                  rows=len(batch), pause_s=round(pause, 1))
            self.stop.wait(pause)
        return []

    def _target_round(self) -> bool:
        """One batch of the target model's queue (a model switch), embedded
        and written here; False when there is none ready (or no target)."""
        self._sync_models()
        if self.target is None:
            return False
        batch = queue.claim_target(self.conn, self.id, self.s.batch_size, self.s.lease_seconds)
        if not batch:
            return False
        self.stats.claimed += len(batch)
        self.stats.batches += 1
        try:
            ready = embed_batch(self.conn, self.target, self.id, batch, self.stats,
                                fail=queue.fail_target)
            self._down = 0
        except Stopping:
            queue.release_target(self.conn, self.id, batch)
            return False
        except ProviderAuthError as exc:
            queue.release_target(self.conn, self.id, batch)
            raise WorkerExit(EXIT_AUTH, f"{exc}; stopping, because retrying cannot help: "
                             "fix the key and restart the worker") from None
        except ProviderUnavailable as exc:
            self.stats.failed += len(batch)
            queue.fail_target(self.conn, self.id, batch, f"{type(exc).__name__}: {exc}")
            if self.s.once:
                raise WorkerExit(EXIT_ERROR, f"provider unavailable: {exc}") from None
            pause = backoff(self._down, self.s.pause_seconds, PAUSE_CAP)
            self._down += 1
            event(log, "provider unavailable, pausing", logging.WARNING, error=str(exc),
                  rows=len(batch), pause_s=round(pause, 1), model=self.target.model)
            self.stop.wait(pause)
            return False
        for part in ready:
            try:
                self.stats.written += queue.complete_target(
                    self.conn, self.id, self.target.model, part.batch, part.vectors,
                    part.role_vectors)
            except psycopg.errors.InvalidParameterValue:
                # promoted or dropped meanwhile: those vectors have no place now
                queue.release_target(self.conn, self.id, part.batch)
                self._sync_models()
                return True
            except psycopg.OperationalError:
                raise
            except psycopg.errors.InsufficientPrivilege:
                queue.release_target(self.conn, self.id, part.batch)
                raise
            except psycopg.Error as exc:
                event(log, "target write-back failed", logging.ERROR, error=str(exc),
                      rows=len(part.batch))
                self.stats.failed += len(part.batch)
                queue.fail_target(self.conn, self.id, part.batch, f"database: {exc}")
        return True

    def _write_back(self, ready: list, model: str) -> list:  # in the writer thread
        return write_back(self.write, self.id, model, ready, self.stats)

    def _finish(self, writing: tuple[list[queue.Claimed], Future, str] | None,
                quiet: bool = False) -> None:
        """Waits for a write-back and handles its failure. quiet: another
        error is already on its way out; this one is only logged."""
        if writing is None:
            return
        batch, future, model = writing
        try:
            refused = future.result()
        except psycopg.errors.InvalidParameterValue:
            # complete_embeddings refuses vectors of a model that is no longer active
            if quiet:
                return
            queue.release(self.conn, self.id, batch)
            self._check_model()
            if self.embedder.model != model:
                return  # a model promoted meanwhile: the batch goes again, with it
            raise
        except psycopg.errors.InsufficientPrivilege:
            if quiet:
                return
            queue.release(self.conn, self.id, batch)  # not the rows' fault: no attempt
            raise
        except psycopg.OperationalError as exc:
            if quiet:
                event(log, "write-back lost", logging.WARNING, error=str(exc), rows=len(batch))
                return
            raise
        except psycopg.Error as exc:
            # The write was refused for this batch: count an attempt, so a
            # poison batch ends in dead letters instead of a crash loop.
            event(log, "write-back failed", logging.ERROR, error=str(exc), rows=len(batch))
            if quiet:
                return
            self.stats.failed += len(batch)
            self.stats.dead_lettered += queue.fail(self.conn, self.id, batch,
                                                   f"database: {exc}")
            return
        # Rows the database refused alone (bisected out; the rest is written):
        # each is charged an attempt, so it ends in dead letters, not a loop.
        try:
            charge_refused(self.conn, self.id, refused, self.stats)  # write_back logged each
        except psycopg.Error:
            if not quiet:
                raise  # quiet: their leases expire instead


def _worker_role() -> str:
    """The role `jobmatch migrate` grants the worker's rights to."""
    return os.environ.get("JOBMATCH_WORKER_ROLE") or "jobmatch_worker"
