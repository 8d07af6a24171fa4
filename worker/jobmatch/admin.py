"""The admin commands: `jobmatch migrate`, `health`, `index rebuild` and
`index tune`; what each calls and what it prints. Their flags are in cli.py;
the work is done by SQL (db/functions) and by migrate.py, vector_index.py and
index_tune.py."""

from __future__ import annotations

import json
import sys

import psycopg

from . import db
from .config import model_spec
from .model_switch import coverage, format_coverage


def cmd_migrate(args) -> int:
    from .migrate import SchemaExposed, migrate

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
    except SchemaExposed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"migrations applied: {', '.join(result['migrations']) or 'none (up to date)'}")
    print(f"functions applied: {len(result['functions'])} files")
    model, provider, dims, threshold = result["model"]
    print(f"embedding model: {model} ({provider}, {dims} dimensions, threshold {threshold})")
    if roles:
        print(f"roles: {roles[0]} may call match_jobs, match_users and next_job_alerts;"
              f" {roles[1]} may use the queue API")
    for name in result["may_create_in_public"]:
        print(f"WARNING: role {name} may CREATE in schema public, where the SECURITY DEFINER"
              f" functions resolve names: REVOKE CREATE ON SCHEMA public FROM {name}")
    return 0


def _usd(amount) -> str:
    return "price unknown" if amount is None else f"${amount:,.4f}"


def cmd_health(args) -> int:
    with db.connect() as conn:
        health = db.dict_rows(conn.execute("SELECT * FROM embedding_health"))[0]
        usage = db.dict_rows(conn.execute(
            "SELECT day, model, requests, inputs, tokens, cached_inputs, cached_tokens,"
            " skipped_inputs, usd, usd_saved FROM embedding_spend"
            " WHERE day > current_date - 30 ORDER BY day DESC, model"))
        indexes = db.dict_rows(conn.execute("SELECT * FROM vector_index_drift()"))
        security = db.dict_rows(conn.execute("SELECT * FROM jobmatch_schema_exposure()"))
        taxonomy = db.dict_rows(conn.execute("SELECT * FROM jobmatch_taxonomy_status()"))[0]
        models = coverage(conn)
    # planted functions or operators: code an untrusted role could run as
    # the owner (68_schema_guard.sql); the command fails, as migrate does
    status = 1 if any(s["kind"] != "create" for s in security) else 0
    if args.json:
        print(json.dumps({"health": health, "usage_30d": usage, "vector_indexes": indexes,
                          "models": models, "security": security, "taxonomy": taxonomy},
                         default=str, indent=2))
        return status
    h = health
    print(f"model:        {h['active_model']}")
    print(f"users:        {h['users_embedded']}/{h['users_total']} ({h['user_coverage_pct']}%)")
    print(f"jobs (window): {h['jobs_embedded']}/{h['jobs_in_window']} ({h['job_coverage_pct']}%)")
    print(f"queue:        {h['queue_depth']} pending, {h['queue_leased']} leased, "
          f"{h['queue_retrying']} retrying, oldest {h['oldest_pending_age']}")
    print(f"dead letters: {h['dead_lettered']}")
    print(f"queue cost:   {_usd(h['queue_projected_usd'])} projected at the model's price")
    print(f"status:       {h['status']}")
    t = taxonomy
    if t["model_vectors"]:
        print(f"taxonomy:     {t['model_vectors']} occupations; jobs (window) "
              f"{t['jobs_mapped']}/{t['jobs_embedded']}, seekers {t['users_mapped']}/"
              f"{t['users_embedded']} with an occupation")
    else:
        print("taxonomy:     none for this model (`jobmatch taxonomy load`: occupations"
              " as a ranking term, docs/matching.md)")
    if len(models) > 1:  # a model switch (jobmatch model add): both models' coverage
        for line in format_coverage(models):
            print(f"model switch: {line}")
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
    for x in security:
        what = (f"role {x['object_name']} may CREATE in schema public" if x["kind"] == "create"
                else f"{x['kind']} {x['object_name']} in public is owned by {x['owner_name']}")
        print(f"SECURITY:     {what}: the SECURITY DEFINER functions resolve names there"
              " (docs/dba.md, Roles)")
    return status


def cmd_index(args) -> int:
    from .vector_index import rebuild

    with db.connect(autocommit=True) as conn:
        try:
            halfvec = None if args.precision is None else args.precision == "halfvec"
            result = rebuild(conn, args.table, args.lists, args.min_rows, args.method, halfvec,
                             model=args.model)
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            print(f"error: {exc.diag.message_primary}\nhint: {exc.diag.message_hint}", file=sys.stderr)
            return 2
        except psycopg.errors.ProgramLimitExceeded as exc:
            # an ivfflat build with many lists needs more than maintenance_work_mem
            print(f"error: {exc.diag.message_primary}\nhint: raise maintenance_work_mem for the"
                  " build (PGOPTIONS=\"-c maintenance_work_mem=4GB\" jobmatch index rebuild"
                  " ...) or pass fewer --lists; the serving index is unchanged",
                  file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    kind = f"{result['method']}{' halfvec' if result['halfvec'] else ''}"
    lists = f" lists={result['lists']}" if result["lists"] else ""
    since = (f" posted since {result['posted_since']:%Y-%m-%d}"
             if result.get("posted_since") else "")
    print(f"built {result['index']} on {result['table']}: {kind}{lists} over {result['rows']}"
          f" rows{since}" + (f" (of {args.model}: it takes the serving name at"
                              f" `jobmatch model promote {args.model}`)"
                              if result["index"].endswith("_next") else ""))
    return 0


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
