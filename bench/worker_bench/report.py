"""The goals, the table on stdout and the CSV rows of a run's results."""


from __future__ import annotations

import collections
import json
import math
import statistics



from .common import FRESHNESS_P50_GOAL, TRIGGER_RATIO_GOAL, ZERO_LATENCY_GOAL, r

# ------------------------------------------------------------------ goals, table, files

def evaluate(results: dict) -> dict:
    goals = {}
    w = results.get("worker", {})
    zero = [x for x in w.get("zero_latency", []) if x.get("name") == "defaults"]
    if zero:
        v = r(statistics.median(x["vectors_per_s"] for x in zero), 1)
        best = max(w.get("zero_latency_summary", []), key=lambda x: x.get("vectors_per_s") or 0)
        goals["zero_latency_vectors_per_s"] = {
            "target": f">= {ZERO_LATENCY_GOAL:.0f} with the defaults", "value": v,
            "runs": [x["vectors_per_s"] for x in zero],
            "serial_cpu_bound_estimate": r(statistics.median(
                x.get("serial_cpu_bound_vectors_per_s") or 0 for x in zero), 0),
            "best_config": {"name": best["name"], "vectors_per_s": best.get("vectors_per_s")},
            "met": bool(v and v >= ZERO_LATENCY_GOAL)}
    summary = w.get("latency_sweep_summary", [])
    sweep = [x for x in summary if x["request_size"] == min((y["request_size"] for y in summary), default=0)]
    if sweep and zero:
        # A batch's claim and requests take turns (only the write-back overlaps the
        # next batch), so a batch of B rows in `waves` rounds of requests takes
        # about waves x L + B / R0 (an upper bound), where R0
        # is the zero-latency (database-bound) rate of the defaults. "The database is
        # the limit" once the database's share of that time, (B / R0) / (waves x L +
        # B / R0), is at least 75%; below that each step up in concurrency must add
        # >= 10% throughput.
        r0 = v
        latency = results.get("meta", {}).get("slow_provider_latency_s", 0.2)
        def waves(x) -> int:  # rounds of requests per batch
            return math.ceil(math.ceil(x["batch_size"] / x["request_size"]) / x["concurrency"])

        steps = []
        for a, b in zip(sweep, sweep[1:]):
            db_time = a["batch_size"] / r0
            share = db_time / (waves(a) * latency + db_time)
            steps.append({"from": a["concurrency"], "to": b["concurrency"],
                          "gain": r(b["vectors_per_s"] / a["vectors_per_s"], 2),
                          "db_share_of_batch_time_at_from": r(share, 2),
                          "ok": share >= 0.75 or b["vectors_per_s"] >= 1.1 * a["vectors_per_s"]})
        model = {str(x["concurrency"]): r(x["batch_size"] / (waves(x) * latency + x["batch_size"] / r0), 0)
                 for x in sweep}
        goals["latency_scales_with_concurrency"] = {
            "target": "throughput grows with concurrency until the database is the limit",
            "rates": {str(x["concurrency"]): x["vectors_per_s"] for x in sweep},
            "serial_model_rates": model, "zero_latency_rate": r0, "steps": steps,
            "met": all(s["ok"] for s in steps)}
    bulk = results.get("write_path", {}).get("bulk", {})
    if bulk:
        ratios = {k: v["ratio_wall"] for k, v in bulk.items()}
        goals["trigger_bulk_ratio"] = {"target": f"<= {TRIGGER_RATIO_GOAL}", "value": ratios,
                                       "met": all(x <= TRIGGER_RATIO_GOAL for x in ratios.values())}
    fresh = [x for x in results.get("freshness", []) if x["provider_latency_s"] == 0]
    if fresh:
        goals["freshness_p50_s"] = {"target": f"<= {FRESHNESS_P50_GOAL}", "value": fresh[0]["match_answered_p50_s"],
                                    "p95": fresh[0]["match_answered_p95_s"],
                                    "met": fresh[0]["match_answered_p50_s"] <= FRESHNESS_P50_GOAL}
    return goals


def table(results: dict) -> str:
    lines = []
    add = lines.append
    w = results.get("worker", {})
    add(f"{'worker run (median of runs)':58s} {'vec/s':>8s} {'runs':>5s}  {'worker':>7s} {'db':>7s} {'fake':>6s}"
        f" {'RSS MB':>7s} {'load':>5s} {'cpu est':>7s}  vec/s each run")
    add(f"{'':58s} {'':>8s} {'':>5s}  {'---- CPU ms/vector ---':>22s}")
    for x in w.get("plan_baseline", []):
        name = f"plan loop (1 req/row, sleep 0.1, UPDATE/row), {x['provider_latency_s'] * 1000:.0f} ms"
        add(f"{name:58s} {x['vectors_per_s']:8.2f} {1:5d}   {'':>7s} {'':>7s} {'':>6s} {'':>7s} {x['loadavg_after'][0]:5.1f}")
    lat = results.get("meta", {}).get("slow_provider_latency_s", 0.2)
    for x in w.get("latency_sweep_summary", []) + w.get("zero_latency_summary", []):
        if "concurrency" in x:
            name = f"{lat * 1000:.0f} ms: {x['name']}"
        else:
            name = f"0 ms: {x['name']} ({x['flags'] or 'batch 400, req 100, conc 4'})"
        est = x.get("serial_cpu_bound_vectors_per_s")
        add(f"{name[:58]:58s} {x.get('vectors_per_s') or 0:8.0f} {x['runs']:5d}  "
            f" {x.get('worker_cpu_ms_per_vector_net') or 0:7.3f} {x.get('db_cpu_ms_per_vector') or 0:7.3f}"
            f" {x.get('provider_cpu_ms_per_vector') or 0:6.3f} {x.get('worker_peak_rss_mb') or 0:7.0f}"
            f" {statistics.median(x['loadavg_after']):5.1f} {f'{est:7.0f}' if est else '      -'}"
            f"  {x['vectors_per_s_all'] if x['runs'] > 1 else ''}")
    bulk = results.get("write_path", {}).get("bulk", {})
    if bulk:
        add("")
        add(f"{'bulk load':28s} {'rows':>7s} {'with trg s':>11s} {'without s':>10s} {'ratio':>6s} {'cpu ratio':>9s} {'us/row':>7s}")
        for k, v in bulk.items():
            add(f"{k:28s} {v['rows']:7d} {v['with_triggers']['wall_s_median']:11.2f}"
                f" {v['without_triggers']['wall_s_median']:10.2f} {v['ratio_wall']:6.2f}"
                f" {v.get('ratio_backend_cpu') or 0:9.2f} {v['trigger_us_per_row_wall']:7.1f}")
    single = results.get("write_path", {}).get("single_row_updates", [])
    if single:
        add("")
        add(f"{'single-row UPDATE (autocommit)':36s} {'median us':>10s} {'p95 us':>8s} {'cpu us':>8s} {'queued':>7s}")
        for s in single:
            name = f"{s['update']}, triggers {'on' if s['triggers'] else 'off'}"
            add(f"{name:36s} {s['us_per_row_median']:10.0f} {s['us_per_row_p95']:8.0f}"
                f" {s['backend_cpu_us_per_row'] or 0:8.0f} {s['queued']:7d}")
    fresh = results.get("freshness", [])
    if fresh:
        add("")
        add(f"{'freshness (UPDATE -> match_jobs)':36s} {'n':>4s} {'vec p50':>8s} {'vec p95':>8s} {'match p50':>10s} {'match p95':>10s} {'changed':>8s}")
        for f in fresh:
            name = f"provider {f['provider_latency_s'] * 1000:.0f} ms, worker running"
            add(f"{name:36s} {f['updates']:4d} {f['vector_visible_p50_s']:8.3f} {f['vector_visible_p95_s']:8.3f}"
                f" {f['match_answered_p50_s']:10.3f} {f['match_answered_p95_s']:10.3f} {f['answers_changed']:8d}")
    mem = results.get("memory", {}).get("tables_after_zero_latency_defaults")
    if mem:
        add("")
        add(f"{'table (after the zero-latency run)':36s} {'rows':>7s} {'heap MB':>8s} {'toast MB':>9s} {'index MB':>9s} {'total MB':>9s} {'B/row':>7s}")
        for t, v in mem.items():
            add(f"{t:36s} {v['rows']:7d} {v['heap_bytes'] / 2**20:8.1f} {v['toast_bytes'] / 2**20:9.1f}"
                f" {sum(v['indexes_bytes'].values()) / 2**20:9.1f} {v['total_bytes'] / 2**20:9.1f}"
                f" {v['bytes_per_row'] or 0:7d}")
    goals = results.get("goals", {})
    if goals:
        add("")
        for k, g in goals.items():
            add(f"goal {k}: {'MET' if g['met'] else 'NOT MET'} (target {g['target']};"
                f" value {g.get('value', g.get('rates'))})")
            if "serial_model_rates" in g:
                add(f"    serial model waves x L + B / R0 with R0 = {g['zero_latency_rate']}: {g['serial_model_rates']};"
                    f" database share of batch time at each step: "
                    f"{[s['db_share_of_batch_time_at_from'] for s in g['steps']]}")
    return "\n".join(lines)


def flatten(results: dict) -> list[dict]:
    rows = []

    def walk(prefix: str, obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
            seen: collections.Counter = collections.Counter()
            for i, x in enumerate(obj):
                if x.get("name"):
                    label = x["name"]
                elif "concurrency" in x:
                    label = f"c{x['concurrency']}_rs{x['request_size']}"
                elif "update" in x:
                    label = f"{x['update']}_triggers_{'on' if x['triggers'] else 'off'}"
                elif "mode" in x:
                    label = f"{x['mode']}_{x['provider_latency_s']}s_sql_{'fixed' if x['sql_fixes'] else 'as_is'}"
                elif "provider_latency_s" in x:
                    label = f"latency_{x['provider_latency_s']}s"
                else:
                    label = str(i)
                seen[label] += 1
                walk(f"{prefix}[{label}{'' if seen[label] == 1 else f' #{seen[label]}'}]", x)
        elif isinstance(obj, (int, float, str, bool)) or obj is None:
            rows.append({"metric": prefix, "value": obj})
        else:
            rows.append({"metric": prefix, "value": json.dumps(obj)})

    walk("", {k: v for k, v in results.items() if k != "meta"})
    return rows
