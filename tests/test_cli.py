"""The `jobmatch` command against a real database."""

import json
import re

import pytest

from jobmatch.cli import build_parser
from support.cli import jobmatch


def all_actions(parser):
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for sub in action.choices.values():
                yield from all_actions(sub)
        elif action.option_strings and action.dest != "help":
            yield action


def test_every_flag_names_its_environment_variable():
    actions = list(all_actions(build_parser()))
    assert len(actions) > 10
    missing = [a.option_strings[0] for a in actions if "[env: " not in (a.help or "")]
    assert missing == []


def test_migrate_twice_is_safe(empty_dsn):
    first = jobmatch(empty_dsn, "migrate", "--embedder", "local").stdout
    assert "0001_bot_tables" in first and "multilingual-e5-small (local, 384" in first
    second = jobmatch(empty_dsn, "migrate", env={"JOBMATCH_EMBEDDER": "local"}).stdout
    assert "none (up to date)" in second


def test_migrate_refuses_a_different_model_without_switch(dsn):
    result = jobmatch(dsn, "migrate", "--embedder", "openai", check=False)
    assert result.returncode == 2
    assert "embeds with multilingual-e5-small" in result.stderr
    assert "switch" in result.stderr


def test_match_prints_json_and_rejects_bad_limits(conn, dsn):
    conn.execute("INSERT INTO user_preferences (user_id, job_roles) VALUES (1, ARRAY['Welder'])")
    conn.execute("INSERT INTO canonical_jobs (title) VALUES ('Welder')")
    rows = json.loads(jobmatch(dsn, "match", "1", "--json").stdout)
    assert [(r["title"], r["match_method"]) for r in rows] == [("Welder", "keyword")]
    bad = jobmatch(dsn, "match", "1", "--limit", "0", check=False)
    assert bad.returncode == 2 and "limit must be at least 1" in bad.stderr
    assert jobmatch(dsn, "match", "999").stdout.strip() == "(no rows)"


@pytest.mark.slow
def test_alerts_dry_run_marks_nothing_send_marks_and_match_users_prints(conn, dsn):
    from support.data import at_similarity, set_job_vector, set_user_vector, unit

    q = unit(0)
    conn.execute("INSERT INTO user_preferences (user_id, job_roles) VALUES (1, ARRAY['Welder'])")
    set_user_vector(conn, 1, q)
    job_id = conn.execute("INSERT INTO canonical_jobs (title) VALUES ('Welder') RETURNING id"
                          ).fetchone()[0]
    set_job_vector(conn, job_id, at_similarity(q, 0.9, 1))
    dry = json.loads(jobmatch(dsn, "alerts", "--json").stdout)
    assert [(r["user_id"], r["job_id"]) for r in dry] == [(1, job_id)]
    assert dry[0]["match_reasons"][0] == "Semantic match: 90%"
    assert conn.execute("SELECT count(*) FROM job_alerts").fetchone()[0] == 0
    text = jobmatch(dsn, "alerts").stdout
    assert f"job {job_id} -> seeker 1:" in text and "would be sent (dry run" in text
    sent = jobmatch(dsn, "alerts", "--send", "--limit", "5").stdout
    assert "1 alerts for 1 jobs marked sent" in sent
    assert conn.execute("SELECT user_id, job_id FROM job_alerts").fetchall() == [(1, job_id)]
    assert json.loads(jobmatch(dsn, "alerts", "--json").stdout) == []
    users = json.loads(jobmatch(dsn, "match-users", str(job_id), "--json").stdout)
    assert [(r["user_id"], r["match_method"]) for r in users] == [(1, "semantic")]
    assert "seeker 1:" in jobmatch(dsn, "match-users", str(job_id)).stdout
    assert jobmatch(dsn, "match-users", "424242").stdout.strip() == "(no rows)"
    for argv in (["alerts", "--limit", "0"], ["match-users", str(job_id), "--limit", "-1"]):
        bad = jobmatch(dsn, *argv, check=False)
        assert bad.returncode == 2 and "limit must be at least 1" in bad.stderr


def test_health_reports_status(conn, dsn):
    out = json.loads(jobmatch(dsn, "health", "--json").stdout)
    assert out["health"]["status"] == "EXCELLENT"
    assert "status:" in jobmatch(dsn, "health").stdout


def test_index_rebuild_refuses_too_little_data(dsn):
    result = jobmatch(dsn, "index", "rebuild", "--table", "job", "--method", "ivfflat",
                      check=False)
    assert result.returncode == 2 and "refusing to build" in result.stderr


def test_index_rebuild_builds_concurrently_and_records(conn, dsn):
    from support.data import unit
    with conn.cursor().copy("COPY canonical_jobs (title, job_embedding, job_embedding_model)"
                            " FROM STDIN") as cp:
        for i in range(2000):
            cp.write_row((f"Job {i}", unit(i), "multilingual-e5-small"))
    out = jobmatch(dsn, "index", "rebuild", "--min-rows", "1000", "--lists", "20",
                   "--method", "ivfflat", "--precision", "vector").stdout
    assert "ivfflat lists=20 over 2000 rows" in out
    jobmatch(dsn, "index", "rebuild", "--min-rows", "1000", "--lists", "10")  # swap in place
    assert conn.execute("SELECT indexdef LIKE '%lists=''10''%' FROM pg_indexes WHERE"
                        " indexname = 'canonical_jobs_job_embedding_ann'").fetchone() == (True,)
    assert conn.execute("SELECT lists, rows_at_build FROM vector_index_builds").fetchall() == \
        [(10, 2000)]
    # the method and precision of a rebuild become the model's, so match_jobs
    # searches with them (and the next rebuild keeps them)
    out = jobmatch(dsn, "index", "rebuild", "--min-rows", "1000", "--method", "hnsw",
                   "--precision", "halfvec").stdout
    since = conn.execute("SELECT current_date - 67").fetchone()[0]  # window + 7-day margin
    assert f"hnsw halfvec over 2000 rows posted since {since}" in out
    assert conn.execute("SELECT index_method, index_halfvec FROM embedding_models"
                        " WHERE is_active").fetchone() == ("hnsw", True)
    conn.execute("SET enable_sort = off")  # walk the index, as match_jobs does on a big window
    window_start = conn.execute("SELECT (current_date - 60)::timestamptz").fetchone()[0]
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN SELECT id FROM canonical_jobs WHERE job_embedding_model = 'multilingual-e5-small'"
        " AND posted_date >= %s"
        " ORDER BY job_embedding::halfvec(384) <=> %s::halfvec(384) LIMIT 5",
        [window_start, unit(1)]))
    assert "canonical_jobs_job_embedding_ann" in plan


def test_index_rebuild_short_of_memory_says_how_and_keeps_the_serving_index(conn, dsn):
    from support.data import unit
    with conn.cursor().copy("COPY canonical_jobs (title, job_embedding, job_embedding_model)"
                            " FROM STDIN") as cp:
        for i in range(2000):
            cp.write_row((f"Job {i}", unit(i), "multilingual-e5-small"))
    jobmatch(dsn, "index", "rebuild", "--min-rows", "1", "--lists", "5", "--method", "ivfflat")
    # k-means over 2,000 samples of 384-d vectors does not fit in 1 MB
    out = jobmatch(dsn, "index", "rebuild", "--min-rows", "1", "--lists", "50",
                   "--method", "ivfflat", env={"PGOPTIONS": "-c maintenance_work_mem=1MB"},
                   check=False)
    assert out.returncode == 2, out.stderr
    assert "memory required" in out.stderr and "maintenance_work_mem" in out.stderr
    assert "Traceback" not in out.stderr
    # no invalid half-built index is left; the serving one is the old build
    assert conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'canonical_jobs'"
                        " AND indexname LIKE '%ann%'").fetchall() == [
        ("canonical_jobs_job_embedding_ann",)]
    assert conn.execute("SELECT lists FROM vector_index_builds").fetchall() == [(5,)]


@pytest.mark.slow
def test_demo_fills_vectors_and_prints_matches(conn, dsn):
    out = jobmatch(dsn, "demo", "--jobs", "60", "--seekers", "12", "--show", "2").stdout
    assert "loaded 60 jobs and 12 seekers; the triggers queued 72 rows" in out
    embedded, skipped = map(int, re.search(
        r"embedded (\d+) rows in .*; (\d+) needed no embedding", out).groups())
    assert embedded + skipped == 72 and embedded >= 12
    # 60 jobs over 40 families: a shown seeker may have no relevant job
    # (nothing rather than filler, issue #13)
    assert out.count("\nSeeker ") == 2
    assert "[semantic]" in out or "[near_miss]" in out or "nothing is offered" in out
    # then what the alert feed would push for the newest jobs, without sending it
    assert "Alerts the newest jobs would send (next_job_alerts, dry run):" in out
    assert conn.execute("SELECT count(*) FROM job_alerts").fetchone()[0] == 0
    # every job that can be matched has its vector; older ones were not paid for
    assert conn.execute("SELECT count(*) FILTER (WHERE job_embedding IS NULL),"
                        " count(*) FILTER (WHERE job_embedding IS NOT NULL)"
                        " FROM canonical_jobs WHERE posted_date >= current_date - 67"
                        ).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding IS NULL"
                        ).fetchone()[0] == skipped
    # a database that already has data is not overwritten without --reset
    again = jobmatch(dsn, "demo", "--jobs", "5", "--seekers", "1", check=False)
    assert again.returncode == 2 and "--reset" in again.stderr


@pytest.mark.parametrize("argv", [["--help"], ["migrate", "--help"], ["match", "--help"],
                                  ["alerts", "--help"], ["match-users", "--help"]])
def test_help_works(argv):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 0
