"""match_jobs behind a real PgBouncer in transaction mode: 8 bot clients
sharing a few server connections get exactly what direct calls get, and no
setting match_jobs changes outlives its call on the pooled connection.
Skipped when no `pgbouncer` binary is installed (.ci/run installs it)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from support.data import at_similarity, drain_with, job, unit, user
from jobmatch import standby as sb
from jobmatch.listen_probe import MESSAGE
from support.worker import events, run_worker

BOT = "bouncer_test_bot"  # a login role in the bot's group role
CLIENTS = 8
POOL = 3  # server connections the 8 clients share
# What match_jobs sets during a call (SET clauses, set_config(..., true)).
SETTINGS = ["ivfflat.probes", "ivfflat.max_probes", "ivfflat.iterative_scan", "hnsw.ef_search",
            "hnsw.iterative_scan", "hnsw.max_scan_tuples", "enable_sort", "search_path",
            "transaction_read_only", "jobmatch.exact_search"]


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None)


BINARY = pgbouncer_binary()
pytestmark = [
    pytest.mark.slow,  # a PgBouncer of its own per test
    pytest.mark.skipif(BINARY is None, reason="no pgbouncer binary (apt-get install"
                       " pgbouncer; .ci/run tries to)"),
]


def pgbouncer_version() -> tuple[int, ...]:
    out = subprocess.run([BINARY, "--version"], capture_output=True, text=True).stdout
    return tuple(int(x) for x in re.search(r"PgBouncer (\d+)\.(\d+)", out).groups())


class Bouncer:
    """pgbouncer in the foreground on a free loopback port, pool_mode =
    transaction, trust auth, in front of the test database: `jobmatch`
    (POOL server connections) and `jobmatch_one` (one)."""

    def __init__(self, workdir: Path, dsn: str, users: list[str], prepared: int = 0):
        server = conninfo_to_dict(dsn)
        target = " ".join(f"{k}={server[k]}" for k in ("host", "port", "dbname", "password")
                          if server.get(k))
        self.port = sb.free_port()
        self.dir = workdir
        user = sb.system_user()  # pgbouncer refuses to run as root
        sb.hand_over(workdir, user)
        (workdir / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
        lines = [
            "[databases]",
            f"jobmatch = {target} pool_size={POOL}",
            f"jobmatch_one = {target} pool_size=1",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1", f"listen_port = {self.port}", "unix_socket_dir =",
            "auth_type = trust", f"auth_file = {workdir / 'userlist.txt'}",
            "pool_mode = transaction", "max_client_conn = 100",
            f"logfile = {workdir / 'pgbouncer.log'}",
            "ignore_startup_parameters = extra_float_digits",
        ]
        if prepared:
            lines.append(f"max_prepared_statements = {prepared}")
        (workdir / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
        if user:
            for f in workdir.iterdir():
                shutil.chown(f, user)
        self.proc = subprocess.Popen([BINARY, str(workdir / "pgbouncer.ini")], user=user,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start: {self.log()}")
                time.sleep(0.05)

    def url(self, dbname: str = "jobmatch", user: str = BOT) -> str:
        return make_conninfo(host="127.0.0.1", port=self.port, dbname=dbname, user=user)

    def connect(self, dbname: str = "jobmatch", **kwargs) -> psycopg.Connection:
        kwargs.setdefault("prepare_threshold", None)  # no server-side prepared statements
        return psycopg.connect(self.url(dbname), autocommit=True, **kwargs)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def bot(conn):
    conn.execute(f"DO $$ BEGIN CREATE ROLE {BOT} LOGIN; EXCEPTION WHEN duplicate_object"
                 " THEN NULL; END $$")  # cluster-wide
    conn.execute(f"GRANT jobmatch_bot TO {BOT}")
    return BOT


@pytest.fixture
def bouncer(conn, dsn, bot, tmp_path):
    b = Bouncer(tmp_path / "pgbouncer", dsn, [bot, "postgres"])
    yield b
    b.stop()


@pytest.fixture
def seekers(conn) -> list[int]:
    """Seekers 1-3 with vectors (semantic), 4-5 without (keyword)."""
    base = unit(7)
    for i in range(30):
        job(conn, title=f"Data Engineer {i}", ai_required_skills=["Python", "SQL"],
            ai_city=["Lagos", "Abuja", "Kano"][i % 3])
    user(conn, 1, job_roles=["Data Engineer"], technical_skills=["Python"])
    user(conn, 2, job_roles=["Data Engineer"], preferred_locations=["Lagos"])
    user(conn, 3, job_roles=["Analyst"], technical_skills=["SQL"])
    drain_with(conn, lambda text: base if text.startswith("Seeking")
               else at_similarity(base, 0.83 + (len(text) % 17) / 100, seed=len(text)))
    user(conn, 4, job_roles=["Data Engineer"])
    user(conn, 5, job_roles=["Engineer"], technical_skills=["SQL"])
    return [1, 2, 3, 4, 5]


def direct_answers(dsn, seekers) -> dict[int, list[tuple]]:
    info = conninfo_to_dict(dsn)
    info["user"] = BOT
    with psycopg.connect(make_conninfo(**info), autocommit=True) as c:
        return {s: c.execute("SELECT * FROM match_jobs(%s, 10)", [s]).fetchall() for s in seekers}


def hammer(bouncer, seekers, rounds=15, **connect) -> tuple[list, set[int]]:
    """CLIENTS threads, each its own client connection, calling match_jobs
    for every seeker `rounds` times; returns (answers, backend pids seen)."""
    got: list[tuple[int, list[tuple]]] = []
    pids: set[int] = set()
    errors: list[BaseException] = []
    barrier = threading.Barrier(CLIENTS)

    def client():
        try:
            with bouncer.connect(**connect) as c:
                barrier.wait(10)
                for _ in range(rounds):
                    for s in seekers:
                        with c.transaction():
                            rows = c.execute("SELECT * FROM match_jobs(%s, 10)", [s]).fetchall()
                            pids.add(c.execute("SELECT pg_backend_pid()").fetchone()[0])
                        got.append((s, rows))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [], bouncer.log()
    return got, pids


def test_match_jobs_behind_pgbouncer_transaction_mode_equals_direct_calls(
        conn, dsn, seekers, bouncer):
    expected = direct_answers(dsn, seekers)
    methods = {rows[0][-1] for rows in expected.values() if rows}
    assert methods == {"semantic", "keyword"} and all(expected.values())
    got, pids = hammer(bouncer, seekers)
    assert len(got) == CLIENTS * 15 * len(seekers)
    assert [s for s, rows in got if rows != expected[s]] == []
    assert 1 <= len(pids) <= POOL  # 8 clients really shared the pool's connections


def settings(c) -> dict[str, str | None]:
    c.execute("SELECT '[1]'::vector")  # loads pgvector, so its settings exist
    return {name: c.execute("SELECT current_setting(%s, true)", [name]).fetchone()[0]
            for name in SETTINGS}


def test_match_jobs_leaves_no_setting_on_the_pooled_server_connection(
        conn, dsn, seekers, bouncer):
    # knobs far from the defaults, and the index walk that turns enable_sort off
    conn.execute("UPDATE embedding_models SET ivfflat_probes = 7, ivfflat_max_probes = 77,"
                 " hnsw_ef_search = 77, hnsw_max_scan_tuples = 7777, exact_scan_max_rows = 0"
                 " WHERE is_active")
    info = conninfo_to_dict(dsn)
    info["user"] = BOT
    with psycopg.connect(make_conninfo(**info), autocommit=True) as fresh:
        baseline = settings(fresh)
    assert baseline["enable_sort"] == "on" and baseline["ivfflat.probes"] != "7"

    # one server connection (jobmatch_one): every client below runs on it
    with bouncer.connect("jobmatch_one") as a, bouncer.connect("jobmatch_one") as b:
        pid = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        for s in seekers:
            assert a.execute("SELECT * FROM match_jobs(%s, 10)", [s]).fetchall()
        with a.transaction():  # several calls in one transaction end clean too
            for s in seekers:
                a.execute("SELECT * FROM match_jobs(%s, 10)", [s]).fetchall()
            assert settings(a) == baseline
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            a.execute("SELECT * FROM match_jobs(1, -1)")  # an error mid-call leaves nothing
        assert b.execute("SELECT pg_backend_pid()").fetchone()[0] == pid
        assert settings(b) == baseline


def test_the_worker_refuses_a_pooled_connection_its_listen_cannot_hear_on(
        oconn, dsn, bouncer, server):
    """Transaction pooling swallows NOTIFYs: the worker says so and exits 2
    rather than silently falling back to polling."""
    job(oconn, title="Welder")
    proc = run_worker(bouncer.url(user="postgres"), server, "--once")
    assert proc.returncode == 2, proc.stderr
    (error,) = [e for e in events(proc.stderr) if e["level"] == "error"]
    assert error["msg"] == MESSAGE and "PgBouncer" in error["msg"]
    assert server.requests == []  # nothing embedded, nothing paid for
    # the same worker on a direct connection hears its LISTEN and drains the queue
    assert run_worker(dsn, server, "--once").returncode == 0
    assert oconn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0] == 0


def test_server_side_prepared_statements_behind_pgbouncer(conn, dsn, seekers, tmp_path, bot):
    """psycopg prepares a query it ran 5 times (prepare_threshold); that needs
    PgBouncer >= 1.21 with max_prepared_statements in transaction mode."""
    version = pgbouncer_version()
    if version < (1, 21):
        pytest.skip(f"PgBouncer {'.'.join(map(str, version))} < 1.21 cannot carry prepared"
                    " statements in transaction mode: the bot connects with"
                    " prepare_threshold=None (docs/scaling-out.md)")
    b = Bouncer(tmp_path / "pgbouncer", dsn, [bot, "postgres"], prepared=100)
    try:
        expected = direct_answers(dsn, seekers)
        got, _ = hammer(b, seekers, rounds=10, prepare_threshold=0)  # prepare everything
        assert [s for s, rows in got if rows != expected[s]] == []
    finally:
        b.stop()
