"""`jobmatch model add|promote|drop|status`: a model switch without downtime
(blue/green). The SQL does the work (db/functions/28_target_queue.sql,
29_model_switch.sql, 61_model_coverage.sql); `jobmatch worker` embeds the
target behind fresh work; this prints what each step did."""

from __future__ import annotations

import json
import sys

import psycopg

from . import db
from .config import env_flag, env_switch
from .embedders import LOCAL_MODEL, OPENAI_NATIVE_DIMS, model_key


def target_spec(name: str, dimensions: int | None, provider: str | None) -> tuple[str, str, int]:
    """(database model key, provider, dimensions) of a model to add."""
    provider = provider or ("local" if name == LOCAL_MODEL else "openai")
    if provider == "local":
        if name != LOCAL_MODEL or dimensions not in (None, 384):
            raise ValueError(f"the local embedder is {LOCAL_MODEL} with 384 dimensions")
        return LOCAL_MODEL, "local", 384
    dims = dimensions or OPENAI_NATIVE_DIMS.get(name)
    if not dims:
        raise ValueError(f"--dimensions is required for model {name!r}")
    return model_key(name, dims), provider, dims


def coverage(conn) -> list[dict]:
    return db.dict_rows(conn.execute(
        "SELECT * FROM embedding_model_coverage ORDER BY state, model"))


def format_coverage(rows: list[dict]) -> list[str]:
    return [f"{r['state']:<8} {r['model']}: {r['coverage_pct']}% covered (jobs in window"
            f" {r['jobs_covered']}/{r['jobs_total']}, seekers {r['users_covered']}/"
            f"{r['users_total']})" + (f", {r['queued']} queued" if r["state"] != "active" else "")
            + (f", {r['failed']} failed" if r["failed"] else "") for r in rows]


def _error(exc: psycopg.Error) -> int:
    print(f"error: {exc.diag.message_primary}", file=sys.stderr)
    if exc.diag.message_hint:
        print(f"hint: {exc.diag.message_hint}", file=sys.stderr)
    return 2


def cmd_add(args) -> int:
    try:
        model, provider, dims = target_spec(args.name, args.dimensions, args.provider)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with db.connect(autocommit=True) as conn:
        try:
            (queued,) = conn.execute("SELECT add_embedding_model(%s, %s, %s, %s)",
                                     [model, provider, dims, args.threshold]).fetchone()
        except (psycopg.errors.InvalidParameterValue,
                psycopg.errors.ObjectNotInPrerequisiteState,
                psycopg.errors.NullValueNotAllowed) as exc:
            return _error(exc)
        print(f"target model: {model} ({provider}, {dims} dimensions); {queued} rows queued"
              " for it at low priority; the active model keeps serving")
        print("next: keep `jobmatch worker` running (it embeds both models), watch"
              f" `jobmatch health`, then `jobmatch index rebuild --model {model}` and"
              f" `jobmatch model promote {model}`")
    return 0


def cmd_promote(args) -> int:
    with db.connect(autocommit=True) as conn:
        try:
            (rows,) = conn.execute("SELECT promote_embedding_model(%s, %s::numeric)",
                                   [args.name, args.min_coverage]).fetchone()
        except (psycopg.errors.InvalidParameterValue,
                psycopg.errors.ObjectNotInPrerequisiteState) as exc:
            return _error(exc)
        print(f"active model: {args.name}; {rows} rows now served by its vectors."
              " The previous model is the target (kept current for a rollback) until"
              " `jobmatch model drop` removes it")
        for line in format_coverage(coverage(conn)):
            print(line)
    return 0


def cmd_drop(args) -> int:
    with db.connect(autocommit=True) as conn:
        try:
            (removed,) = conn.execute("SELECT drop_embedding_model(%s)", [args.name]).fetchone()
        except (psycopg.errors.InvalidParameterValue,
                psycopg.errors.ObjectNotInPrerequisiteState) as exc:
            return _error(exc)
    print(f"dropped {args.name}: {removed} vectors removed")
    return 0


def cmd_status(args) -> int:
    with db.connect(autocommit=True) as conn:
        rows = coverage(conn)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
    else:
        for line in format_coverage(rows):
            print(line)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("model", help="switch embedding models without downtime (blue/green)")
    msub = p.add_subparsers(dest="model_command", required=True)
    a = msub.add_parser("add", help="register a target model; the active one keeps serving while "
                                    "the worker fills the target's vectors")
    a.add_argument("name", help="model name, e.g. text-embedding-3-large")
    env_flag(a, "--dimensions", "JOBMATCH_TARGET_DIMENSIONS", None, type=int,
             help="vector size (text-embedding-3 models accept fewer than native)")
    env_flag(a, "--provider", "JOBMATCH_TARGET_PROVIDER", None, choices=["openai", "local"],
             help="who makes its vectors (default: local for multilingual-e5-small, else openai)")
    env_flag(a, "--threshold", "JOBMATCH_TARGET_THRESHOLD", None, type=float,
             help="its similarity_threshold (default 0.65, the plan's for text-embedding-3)")
    a.set_defaults(func=cmd_add)
    pr = msub.add_parser("promote", help="make a model active (match_jobs and match_users at "
                                         "once) when it covers enough rows")
    pr.add_argument("name")
    env_flag(pr, "--min-coverage", "JOBMATCH_MIN_COVERAGE", 99.0, type=float,
             help="refuse below this percentage of jobs in the window and of seekers")
    pr.set_defaults(func=cmd_promote)
    d = msub.add_parser("drop", help="remove a model's vectors (never the active model's)")
    d.add_argument("name")
    d.set_defaults(func=cmd_drop)
    st = msub.add_parser("status", help="each model's coverage and queue")
    env_switch(st, "--json", "JOBMATCH_JSON", help="print JSON")
    st.set_defaults(func=cmd_status)

