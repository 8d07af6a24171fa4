"""Retention: `jobmatch prune` and prune_jobs (db/functions/64_retention.sql)."""

import psycopg
import pytest

from support.data import job, queue_rows
from jobmatch.cli import main


def posted(days_ago):
    return f"now() - interval '{days_ago} days'"


def jobs_by_age(conn, ages):
    ids = []
    for days in ages:
        (i,) = conn.execute("INSERT INTO canonical_jobs (title, posted_date) VALUES"
                            f" ('Welder', {posted(days)}) RETURNING id").fetchone()
        ids.append(i)
    return ids


def remaining(conn):
    return [r[0] for r in conn.execute("SELECT id FROM canonical_jobs ORDER BY id")]


def test_nothing_is_pruned_unless_a_retention_is_set(conn):
    jobs_by_age(conn, [400])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no job retention"):
        conn.execute("SELECT * FROM prune_jobs(true)")
    assert len(remaining(conn)) == 1


def test_a_retention_shorter_than_the_window_is_refused(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE jobmatch_settings SET job_retention_days = 30")  # window: 60


def test_prune_deletes_old_jobs_in_batches_with_their_queue_rows(conn):
    keep = jobs_by_age(conn, [1, 59, 119])
    old = jobs_by_age(conn, [121, 200, 365])
    undated = job(conn, title="Undated", posted_date=None)
    conn.execute("UPDATE jobmatch_settings SET job_retention_days = 120")
    assert {r[1] for r in queue_rows(conn)} >= set(old)  # queued by the insert trigger
    cutoff, total, queued, deleted = conn.execute("SELECT * FROM prune_jobs()").fetchone()
    assert (total, queued, deleted) == (3, 3, 0)  # a dry run deletes nothing
    assert len(remaining(conn)) == 7
    assert conn.execute("SELECT deleted FROM prune_jobs(true, 2)").fetchone() == (2,)
    assert conn.execute("SELECT deleted FROM prune_jobs(true, 2)").fetchone() == (1,)
    assert remaining(conn) == sorted(keep + [undated])
    assert not {r[1] for r in queue_rows(conn) if r[0] == "job"} & set(old)


def test_jobmatch_prune_is_a_dry_run_unless_applied(conn, dsn, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", dsn)
    assert main(["prune"]) == 2
    assert "no job retention is set" in capsys.readouterr().err
    jobs_by_age(conn, [1, 300, 301])
    conn.execute("UPDATE jobmatch_settings SET job_retention_days = 90")
    assert main(["prune"]) == 0
    out = capsys.readouterr().out
    assert ": 2 (2 of them queued)" in out and "dry run" in out
    assert len(remaining(conn)) == 3
    assert main(["prune", "--apply", "--batch", "1"]) == 0
    assert "deleted 2 jobs" in capsys.readouterr().out
    assert len(remaining(conn)) == 1


def test_jobmatch_prune_refuses_a_bad_batch(conn, dsn, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", dsn)
    assert main(["prune", "--apply", "--batch", "0"]) == 2
    assert "--batch must be at least 1" in capsys.readouterr().err
