"""Prometheus metrics of `jobmatch worker --metrics-port N` (off by default).

Counters follow the worker's own tallies (DrainStats) and the provider's
requests; gauges are read from `embedding_health`, the SQL source of truth
that postgres_exporter users query directly, at most every
HEALTH_INTERVAL seconds."""

from __future__ import annotations

import threading
import time
from dataclasses import fields

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

HEALTH_INTERVAL = 15.0  # seconds between embedding_health reads

# the DrainStats tallies counted as jobmatch_worker_rows_total{outcome=...}
ROW_OUTCOMES = ("claimed", "written", "failed", "dead_lettered")


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.rows = Counter("jobmatch_worker_rows", "Queue rows this worker handled, by outcome",
                            ["outcome"], registry=r)
        self.requests = Counter("jobmatch_provider_requests",
                                "Embedding API requests, by outcome (ok, retried, failed)",
                                ["outcome"], registry=r)
        self.latency = Histogram("jobmatch_provider_request_seconds",
                                 "Seconds per embedding API request (each attempt)",
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)
        self.inputs = Counter("jobmatch_provider_inputs", "Texts sent to the provider",
                              registry=r)
        self.tokens = Counter("jobmatch_provider_tokens", "Tokens the provider counted",
                              registry=r)
        self.queue_depth = Gauge("jobmatch_queue_depth", "Rows waiting in embedding_queue",
                                 registry=r)
        self.queue_leased = Gauge("jobmatch_queue_leased", "Queue rows leased by a worker",
                                  registry=r)
        self.oldest_pending = Gauge("jobmatch_queue_oldest_pending_seconds",
                                    "Age of the oldest queued row", registry=r)
        self.dead_letters = Gauge("jobmatch_dead_letters", "Rows in embedding_dead_letter",
                                  registry=r)
        self.coverage = Gauge("jobmatch_coverage_ratio",
                              "Share of rows with a current vector (jobs: the match window)",
                              ["entity"], registry=r)
        self.budget_paused = Gauge("jobmatch_budget_paused",
                                   "1 while the daily budget pauses embedding", registry=r)
        self._seen = {name: 0 for name in ROW_OUTCOMES + ("tokens",)}
        self._health_at = 0.0
        self._lock = threading.Lock()

    def serve(self, port: int, address: str = "127.0.0.1"):
        """Starts the HTTP endpoint (/metrics) in a daemon thread."""
        return start_http_server(port, addr=address, registry=self.registry)

    def request(self, seconds: float, outcome: str, inputs: int = 0) -> None:
        """One provider request (an attempt): called by the embedder."""
        with self._lock:
            self.latency.observe(seconds)
            self.requests.labels(outcome).inc()
            if outcome == "ok":
                self.inputs.inc(inputs)

    def sync(self, stats) -> bool:
        """Adds what the worker's tallies gained since the last call; True if
        they gained anything."""
        names = {f.name for f in fields(stats)}
        gained = any(getattr(stats, n) != self._seen[n] for n in ROW_OUTCOMES if n in names)
        with self._lock:
            for name in ROW_OUTCOMES:
                if name in names:
                    value = getattr(stats, name)
                    self.rows.labels(name).inc(max(0, value - self._seen[name]))
                    self._seen[name] = value
            self.tokens.inc(max(0, stats.tokens - self._seen["tokens"]))
            self._seen["tokens"] = stats.tokens
        return gained

    def observe_health(self, conn, paused: bool, force: bool = False) -> None:
        """The queue and coverage gauges, from embedding_health."""
        self.budget_paused.set(1 if paused else 0)
        now = time.monotonic()
        if not force and now - self._health_at < HEALTH_INTERVAL:
            return
        self._health_at = now
        row = conn.execute(
            "SELECT queue_depth, queue_leased, extract(epoch FROM oldest_pending_age),"
            " dead_lettered, user_coverage_pct, job_coverage_pct FROM embedding_health"
        ).fetchone()
        depth, leased, oldest, dead, users, jobs = row
        self.queue_depth.set(depth)
        self.queue_leased.set(leased)
        self.oldest_pending.set(float(oldest or 0))
        self.dead_letters.set(dead)
        self.coverage.labels("user").set(float(users if users is not None else 100) / 100)
        self.coverage.labels("job").set(float(jobs if jobs is not None else 100) / 100)
