"""Smoke test of bench/worker_bench/: the --quick mode end to end on the test
server (a migrated clone of the test database as DATABASE_URL), checking the
shape of the JSON and the counts, never the timings."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the benchmark's --quick run end to end

ROOT = Path(__file__).resolve().parent.parent


def test_worker_bench_quick(dsn, tmp_path):
    out = tmp_path / "worker-quick"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBMATCH_", "OPENAI_"))}
    env.update(DATABASE_URL=dsn, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "bench.worker_bench", "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "goal zero_latency_vectors_per_s" in proc.stdout
    res = json.loads(out.with_suffix(".json").read_text())
    assert {"meta", "worker", "memory", "freshness", "write_path", "goals"} <= set(res)
    assert res["meta"]["database"]["where"] == "DATABASE_URL"

    w = res["worker"]
    assert {"plan_baseline", "startup", "latency_sweep", "zero_latency"} <= set(w)
    for plan in w["plan_baseline"]:
        assert plan["errors"] == 0
        assert plan["rows_written"] == plan["rows_stored"] == plan["rows_cap"] > 0
        assert plan["vectors_per_s"] > 0
    runs = w["latency_sweep"] + w["zero_latency"]
    assert [x["concurrency"] for x in w["latency_sweep"]] == [1, 4]
    assert w["zero_latency"][0]["name"] == "defaults"
    for run in runs:
        # every queued row was claimed once and written, with the vector of its current text
        assert run["rows_queued"] > 0
        assert run["rows_written"] == run["rows_claimed"] == run["rows_queued"]
        assert run["rows_embedded_in_db"] == run["rows_queued"]
        assert run["queue_left"] == 0 and run["failed"] == 0
        assert run["requests"] >= 1
        assert run["vectors_per_s"] > 0 and run["drain_s"] > 0
        assert 20 < run["worker_peak_rss_mb"] < 2000
        assert run["worker_cpu_s"] > 0

    sizes = res["memory"]["tables_after_zero_latency_defaults"]
    jobs = sizes["canonical_jobs"]
    assert jobs["rows"] == w["zero_latency"][0]["rows_queued"]
    assert jobs["toast_bytes"] > jobs["rows"] * 1536 * 4 * 0.9  # the vectors live in TOAST
    assert sizes["embedding_queue"]["rows"] == 0

    (fresh,) = res["freshness"]
    assert fresh["updates"] == len(fresh["samples_s"]) == 5
    assert fresh["worker_exit_code"] == 0
    assert fresh["answers_semantic"] == fresh["updates"]
    assert 0 < fresh["vector_visible_p50_s"] <= fresh["match_answered_p50_s"]

    wp = res["write_path"]
    for method in ("insert_select", "copy"):
        bulk = wp["bulk"][method]
        assert bulk["with_triggers"]["queued"] == [bulk["rows"]]
        assert bulk["without_triggers"]["queued"] == [0]
        assert bulk["ratio_wall"] > 0
    single = {(s["update"], s["triggers"]): s for s in wp["single_row_updates"]}
    assert single[("changes_text", True)]["queued"] == single[("changes_text", True)]["rows"] > 0
    assert single[("changes_text", False)]["queued"] == 0
    assert single[("keeps_text", True)]["queued"] == 0

    assert {"zero_latency_vectors_per_s", "latency_scales_with_concurrency", "trigger_bulk_ratio",
            "freshness_p50_s"} <= set(res["goals"])
    assert all(isinstance(g["met"], bool) for g in res["goals"].values())

    with out.with_suffix(".csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {"metric", "value"} == set(rows[0])
    assert any(r["metric"].startswith("worker.zero_latency[defaults].vectors_per_s") for r in rows)
