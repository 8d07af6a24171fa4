"""`jobmatch worker --metrics-port N` serves Prometheus metrics: rows by
outcome, provider requests and their latency, inputs and tokens, and the
queue and coverage gauges from embedding_health."""

from __future__ import annotations

import signal
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from support.data import job
from support.common import wait_for
from support.worker import assert_embedded, pending


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_running_worker_serves_its_metrics(oconn, dsn, server, workers):
    port = free_port()
    ids = [job(oconn, title=f"Welder {i}") for i in range(5)]
    w = workers(dsn, server, "--metrics-port", str(port), "--poll-interval", "0.2")
    wait_for(lambda: pending(oconn) == 0, timeout=30, what="the worker to drain")
    assert_embedded(oconn, [("job", i) for i in ids])

    def drained_and_observed():
        m = scrape(port)
        return m if m.get(("jobmatch_worker_rows_total", (("outcome", "written"),))) == 5 \
            and m.get(("jobmatch_queue_depth", ())) == 0 else None

    m = wait_for(drained_and_observed, timeout=30, what="the metrics to show the drain")
    assert m[("jobmatch_worker_rows_total", (("outcome", "claimed"),))] == 5
    assert m[("jobmatch_provider_requests_total", (("outcome", "ok"),))] >= 1
    assert m[("jobmatch_provider_request_seconds_count", ())] >= 1
    assert m[("jobmatch_provider_inputs_total", ())] == 10  # each job's profile and role texts
    assert m[("jobmatch_provider_tokens_total", ())] > 0
    assert m[("jobmatch_coverage_ratio", (("entity", "job"),))] == 1.0
    assert m[("jobmatch_dead_letters", ())] == 0
    assert m[("jobmatch_budget_paused", ())] == 0
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=30) == 0


def test_metrics_are_off_by_default_and_a_busy_port_is_a_configuration_error(
        oconn, dsn, server, workers):
    from support.worker import run_worker

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_worker(dsn, server, "--once", "--metrics-port", str(port))
    assert proc.returncode == 2 and "cannot serve metrics" in proc.stderr
