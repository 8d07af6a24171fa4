"""Faults and load, at a size that runs in seconds (bench/chaos.py and
bench/bot_load.py run the same scenarios at full size):

  * PostgreSQL stopped and started under a draining worker (a private
    embedded server, never the shared test server);
  * the worker SIGKILLed again and again while rows keep changing;
  * a provider failing 30% of requests;
  * eight bot clients calling match_jobs while jobs arrive and are embedded.

Each scenario returns its checks and measurements (printed with -s); the
test asserts the measurements that carry the promise, then every check."""

import pytest

from bench import bot_load, chaos
from bench.harness import verify
from support.server import create_database, embedded_server

pytestmark = pytest.mark.slow  # fault and load scenarios, tens of seconds each


def report(result) -> None:
    print(f"\n{result.name}:")
    for name, (ok, detail) in result.checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}  [{detail}]")
    for k, v in result.metrics.items():
        print(f"  {k}: {v}")
    assert not result.failures(), "\n".join(result.failures())


@pytest.fixture
def private_server(tmp_path):
    """An embedded PostgreSQL of this test's own, which it may stop and start."""
    with embedded_server(tmp_path / "pgdata") as server:
        yield server, create_database(server.get_uri(), "restart_test")


def test_postgres_restart_while_draining_loses_nothing(private_server, tmp_path):
    server, dsn = private_server
    r = chaos.pg_restart(server, dsn, tmp_path, jobs=1200, users=300, restarts=1,
                         down_seconds=2.0, latency=0.3, batch=100, request=50, concurrency=2,
                         timeout=180)
    m = r.metrics
    assert m["reconnect_logs"] > 0 and len(m["recovered_after_s"]) == 1  # it noticed, came back
    # every text embedded (each job's profile and role texts, each seeker's
    # profile text and the 20 role texts they share)...
    assert m["distinct_texts"] == m["texts"] == 2 * 1200 + 300 + 20
    assert m["rows_sent"] == m["rows"] == 1500
    # ...and only the batches in flight twice: one being written, one being embedded
    assert m["resent"] <= 2 * m["batch"]
    report(r)


def test_sigkill_loop_while_rows_change_keeps_every_vector_current(oconn, dsn, tmp_path):
    r = chaos.kill_loop(dsn, tmp_path, jobs=2500, users=500, kills=4, kill_after=(1.5, 3.5),
                        update_rate=20.0, latency=0.2, batch=100, request=50, concurrency=2,
                        lease=3.0, timeout=240)
    m = r.metrics
    assert m["kills"] >= 3 and m["kills_mid_batch"] >= 2
    assert m["updates"] > 100  # rows really were edited while the kills went on
    # needed = initial rows + edits, each sending its profile and role texts
    assert m["inputs"] <= 1.2 * 2 * m["needed"], m
    v = verify(oconn)
    assert v.ok and v.rows == 3000, v.summary()  # hash and vector of the current text
    assert oconn.execute("SELECT count(*) FROM embedding_dead_letter").fetchone()[0] == 0
    report(r)


def test_provider_failing_30_percent_of_requests_still_drains_correctly(oconn, dsn, tmp_path):
    r = chaos.provider_chaos(dsn, tmp_path, jobs=1200, users=300, fault_rate=0.3,
                             fault_seed=11, batch=200, request=25, concurrency=4,
                             openai_timeout=1.0, timeout_sleep=2.0, max_retries=12, timeout=180)
    m = r.metrics
    assert m["fault_share"] >= 0.15 and {"429", "500", "timeout", "bad_json"} <= set(m["faults"])
    assert verify(oconn).ok
    assert oconn.execute("SELECT count(*) FROM embedding_dead_letter").fetchone()[0] == 0
    report(r)


def test_bot_load_while_the_worker_embeds_has_no_errors_and_a_bounded_queue(oconn, dsn,
                                                                           tmp_path):
    r = bot_load.run_load(dsn, tmp_path, seconds=8, clients=8, jobs=500, users=100,
                      insert_rate=20.0, insert_every=0.5, latency=0.1)
    m = r.metrics
    print(f"\nmatch_jobs under load: p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms, "
          f"{m['calls_per_s']} calls/s, load average {m['loadavg_end']}")
    assert m["errors"] == 0 and m["calls"] > 0
    assert m["inserted"] >= 100
    assert m["depth_max"] <= m["depth_bound"] == 5 * m["insert_batch"]
    assert m["drained_after_stop_s"] is not None
    report(r)
