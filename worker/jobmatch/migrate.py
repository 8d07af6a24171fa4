"""`jobmatch migrate`: yoyo migrations (one-time, frozen), then every file
in db/functions (idempotent CREATE OR REPLACE, re-applied on every deploy),
then the embedding model is recorded and the roles granted; one run at a
time per database (a session advisory lock around all of it)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from urllib.parse import quote, urlencode

from .db import connect

log = logging.getLogger(__name__)

# A deploy and a concurrent deploy must not interleave function files.
_MIGRATE_LOCK = 7_461_001
# Held by one `jobmatch migrate` for its whole run (another key: the function
# files' transaction lock above is taken on another connection of the same run).
_RUN_LOCK = 7_461_000


def sql_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "db", here / "_db"):  # source tree, installed wheel
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError("cannot find the db/ directory with migrations and functions")


def migrations_dir() -> Path:
    return sql_dir() / "migrations"


def functions_dir() -> Path:
    return sql_dir() / "functions"


def yoyo_url(conninfo: str) -> str:
    """Any libpq conninfo (URL or key=value) as the URL yoyo wants: the scheme
    picks psycopg 3; a socket directory travels as ?host=."""
    info = conninfo_to_dict(conninfo)
    user = quote(info.pop("user", "") or "", safe="")
    password = info.pop("password", None)
    host = info.pop("host", "") or ""
    port = info.pop("port", None)
    dbname = quote(info.pop("dbname", "") or "", safe="")
    if host.startswith("/"):
        info["host"], host = host, ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    netloc = f"{auth}{host}" + (f":{port}" if port else "")
    query = f"?{urlencode(info)}" if info else ""
    return f"postgresql+psycopg://{netloc}/{dbname}{query}"


def apply_migrations(url: str) -> list[str]:
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(url))
    migrations = read_migrations(str(migrations_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def apply_functions(conn: psycopg.Connection) -> list[str]:
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATE_LOCK])
        for path in sorted(functions_dir().glob("*.sql")):
            conn.execute(path.read_text())
            applied.append(path.name)
    return applied


def record_model(conn: psycopg.Connection, model: str, provider: str, dimensions: int,
                 switch: bool = False) -> tuple:
    with conn.transaction():
        return conn.execute(
            "SELECT model, provider, dimensions, similarity_threshold"
            " FROM set_embedding_model(%s, %s, %s, NULL, %s)",
            [model, provider, dimensions, switch],
        ).fetchone()


DEFAULT_ROLES = ("jobmatch_bot", "jobmatch_worker")


def setup_roles(conn: psycopg.Connection, bot_role: str, worker_role: str) -> None:
    with conn.transaction():
        conn.execute("SELECT jobmatch_setup_roles(%s, %s)", [bot_role, worker_role])


@contextmanager
def run_lock(url: str):
    """One `jobmatch migrate` at a time on a database: a session advisory lock
    on a connection of its own, held from the first migration to the last
    grant. Without it two deploys at once interleave CREATE OR REPLACE and
    GRANT on the same catalog rows (deadlocks on pg_proc, "tuple concurrently
    updated"). The lock ends with the connection, so a killed run frees it."""
    with psycopg.connect(url, autocommit=True, application_name="jobmatch migrate") as lock:
        if not lock.execute("SELECT pg_try_advisory_lock(%s)", [_RUN_LOCK]).fetchone()[0]:
            log.warning("another jobmatch migrate is running on this database: waiting for it")
            lock.execute("SELECT pg_advisory_lock(%s)", [_RUN_LOCK])
        try:
            yield
        finally:
            try:
                lock.execute("SELECT pg_advisory_unlock(%s)", [_RUN_LOCK])
            except psycopg.Error:
                pass  # the connection is gone, and the lock with it


class SchemaExposed(RuntimeError):
    """An untrusted role owns a function or operator in public that a
    SECURITY DEFINER function could resolve to (68_schema_guard.sql)."""


def schema_exposure(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(kind, object, owner) rows of jobmatch_schema_exposure: 'create' (a
    role that may still CREATE in public), 'function', 'operator'."""
    return conn.execute("SELECT * FROM jobmatch_schema_exposure()").fetchall()


def check_schema(conn: psycopg.Connection) -> list[str]:
    """Raises SchemaExposed for planted functions or operators; returns the
    roles that may still CREATE in public (a DBA's explicit grant: warned)."""
    rows = schema_exposure(conn)
    planted = [f"{kind} {name} owned by {owner}" for kind, name, owner in rows
               if kind != "create"]
    if planted:
        raise SchemaExposed(
            "objects in schema public that jobmatch's SECURITY DEFINER functions could run"
            " as their owner: " + "; ".join(planted)
            + ". Drop them (or move them out of public) and run `jobmatch migrate` again")
    creators = [name for kind, name, _ in rows if kind == "create"]
    for name in creators:
        log.warning("role %s may CREATE in schema public, where jobmatch's SECURITY DEFINER"
                    " functions resolve names: REVOKE CREATE ON SCHEMA public FROM %s", name, name)
    return creators


def migrate(url: str, model: tuple[str, str, int] | None = None, switch: bool = False,
            roles: tuple[str, str] | None = DEFAULT_ROLES) -> dict:
    """Brings the database at `url` to the current schema; safe to run twice,
    and at the same time (one run waits for the other).
    `roles`: (bot, worker) role names to create and grant, or None to skip."""
    with run_lock(url):
        done = apply_migrations(url)
        with connect(url) as conn:
            functions = apply_functions(conn)
            active = record_model(conn, *model, switch=switch) if model else None
            if roles:
                setup_roles(conn, *roles)
            creators = check_schema(conn)
    return {"migrations": done, "functions": functions, "model": active, "roles": roles,
            "may_create_in_public": creators}
