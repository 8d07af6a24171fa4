"""next_job_alerts(limit): the seekers each new job fits, pushed once, within
the caps, fairly spread."""

import threading

import psycopg
import pytest

from support.data import at_similarity, drain_with, job, set_job_vector, set_user_vector, unit, user
from jobmatch import db as jm_db

COLUMNS = ["user_id", "job_id", "match_score", "match_reasons"]


def alerts(conn, limit=1000):
    cur = conn.execute("SELECT * FROM next_job_alerts(%s)", [limit])
    assert [c.name for c in cur.description] == COLUMNS
    return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]


def pairs(rows):
    return {(r["user_id"], r["job_id"]) for r in rows}


def sent(conn):
    return set(conn.execute("SELECT user_id, job_id FROM job_alerts").fetchall())


def new_job(conn, vec, hours_ago=1.0, **fields):
    fields.setdefault("title", "Accountant")
    jid = job(conn, **fields)
    conn.execute("UPDATE canonical_jobs SET posted_date = now() - make_interval(secs => %s)"
                 " WHERE id = %s", [hours_ago * 3600, jid])
    if vec is not None:
        set_job_vector(conn, jid, vec)
    return jid


def seeker(conn, uid, vec, **prefs):
    prefs.setdefault("job_roles", ["Accountant"])
    user(conn, uid, **prefs)
    set_user_vector(conn, uid, vec)
    conn.execute("DELETE FROM embedding_queue")
    return uid


@pytest.fixture
def q():
    return unit(0)


def test_each_new_job_goes_to_the_seekers_match_users_names_once(conn, q):
    for uid in range(1, 5):
        seeker(conn, uid, at_similarity(q, 0.95 - uid / 100, uid),
               preferred_locations=["Lagos"] if uid != 4 else ["Kano"])
    lagos = new_job(conn, at_similarity(q, 0.93, 10), ai_city="Lagos", ai_state="Lagos")
    kano = new_job(conn, at_similarity(q, 0.93, 11), ai_city="Kano", ai_state="Kano")
    expected = {(r[0], jid) for jid in (lagos, kano)
                for r in conn.execute("SELECT user_id FROM match_users(%s, 100)", [jid])}
    assert {u for u, j in expected if j == lagos} == {1, 2, 3}
    assert {u for u, j in expected if j == kano} == {4}
    rows = alerts(conn)
    assert pairs(rows) == expected == sent(conn)
    # the score and reasons are match_users' (so match_jobs')
    for r in rows:
        (mu,) = conn.execute("SELECT match_score, match_reasons FROM match_users(%s, 100)"
                             " WHERE user_id = %s", [r["job_id"], r["user_id"]]).fetchall()
        assert (r["match_score"], r["match_reasons"]) == mu
    assert alerts(conn) == []  # nothing twice
    # a job that arrives later is pushed on the next call, alone
    later = new_job(conn, at_similarity(q, 0.93, 12), ai_city="Lagos", ai_state="Lagos")
    assert {r["job_id"] for r in alerts(conn)} == {later}
    assert alerts(conn) == []


def test_only_new_jobs_with_a_vector_are_pushed_and_each_is_dealt_with_once(conn, q):
    seeker(conn, 1, q)
    old = new_job(conn, at_similarity(q, 0.9, 1), hours_ago=4 * 24)  # alerts_max_age_days: 3
    waiting = new_job(conn, None)
    assert alerts(conn) == []
    # the job's vector arrives: it is pushed now
    set_job_vector(conn, waiting, at_similarity(q, 0.9, 2))
    assert pairs(alerts(conn)) == {(1, waiting)}
    # a seeker who signs up later, or a job re-embedded after an edit, does
    # not bring the job back: each job's seekers are chosen once
    seeker(conn, 2, at_similarity(q, 0.95, 3))
    set_job_vector(conn, waiting, at_similarity(q, 0.91, 4))
    assert alerts(conn) == []
    conn.execute("UPDATE jobmatch_settings SET alerts_max_age_days = 5")
    assert pairs(alerts(conn)) == {(1, old), (2, old)}


def test_a_seeker_gets_at_most_the_daily_cap_best_jobs_first(conn, q):
    seeker(conn, 1, q)
    jobs = [new_job(conn, at_similarity(q, 0.90 + i / 100, 10 + i)) for i in range(5)]
    rows = alerts(conn)
    assert [r["job_id"] for r in sorted(rows, key=lambda r: -r["match_score"])] == \
        jobs[::-1][:3]  # the three best of five
    # the cap is per 24 hours: older alerts do not count, newer ones do
    conn.execute("UPDATE job_alerts SET sent_at = now() - interval '25 hours'")
    more = [new_job(conn, at_similarity(q, 0.9, 20 + i)) for i in range(3)]
    conn.execute("UPDATE job_alerts SET sent_at = now() - interval '23 hours'"
                 " WHERE job_id = %s", [jobs[4]])
    assert len(alerts(conn)) == 2
    assert len(sent(conn) & {(1, j) for j in more}) == 2
    conn.execute("UPDATE jobmatch_settings SET alerts_per_user_per_day = 0")
    new_job(conn, at_similarity(q, 0.95, 30))
    assert alerts(conn) == []


def test_equal_scores_go_to_the_job_pushed_to_fewer_seekers_so_far(conn, q):
    """Application redistribution: a seeker who qualifies for more jobs than
    their cap gets, among equally good jobs, those that reached fewer
    seekers so far."""
    vec = at_similarity(q, 0.9, 1)
    crowded = [new_job(conn, vec, hours_ago=2) for _ in range(2)]
    quiet = [new_job(conn, vec, hours_ago=2) for _ in range(3)]
    # the crowded jobs were pushed to others already (an earlier call)
    for jid in crowded:
        conn.execute("INSERT INTO job_alerts (job_id, user_id, match_score, sent_at)"
                     " SELECT %s, u, 50, now() - interval '1 hour'"
                     " FROM generate_series(900, 905) AS u", [jid])
    seeker(conn, 1, q)
    rows = alerts(conn)
    scores = {r["match_score"] for r in rows}
    assert len(scores) == 1  # a tie
    assert {r["job_id"] for r in rows} == set(quiet)
    # without the earlier alerts the tie goes to the lower job ids
    conn.execute("TRUNCATE job_alerts, alerted_jobs")
    assert {r["job_id"] for r in alerts(conn)} == set(crowded) | {quiet[0]}


def test_a_job_reaches_at_most_alerts_per_job_seekers_best_first(conn, q):
    conn.execute("UPDATE jobmatch_settings SET alerts_per_job = 4")
    for uid in range(1, 11):
        seeker(conn, uid, at_similarity(q, 0.85 + uid / 100, uid))
    jid = new_job(conn, q)
    best = [r[0] for r in conn.execute("SELECT user_id FROM match_users(%s, 4)", [jid])]
    assert len(best) == 4
    rows = alerts(conn)
    assert pairs(rows) == {(u, jid) for u in best}
    # equal scores: the seeker alerted less today wins
    conn.execute("TRUNCATE job_alerts, alerted_jobs")
    conn.execute("UPDATE user_preferences SET user_embedding = %s", [at_similarity(q, 0.9, 1)])
    conn.execute("INSERT INTO job_alerts (job_id, user_id, match_score)"
                 " SELECT -1, u, 50 FROM generate_series(1, 6) AS u")
    assert {r["user_id"] for r in alerts(conn)} == {7, 8, 9, 10}


def test_quiet_seekers_get_no_alerts_but_still_match(conn, q):
    seeker(conn, 1, q, alerts_enabled=False)
    seeker(conn, 2, at_similarity(q, 0.95, 2))
    jid = new_job(conn, at_similarity(q, 0.9, 3))
    assert {r[0] for r in conn.execute("SELECT user_id FROM match_users(%s)", [jid])} == {1, 2}
    assert pairs(alerts(conn)) == {(2, jid)}


def test_a_limit_stops_half_way_and_the_next_call_goes_on(conn, q):
    for uid in range(1, 6):
        seeker(conn, uid, at_similarity(q, 0.9 + uid / 100, uid))
    jobs = [new_job(conn, at_similarity(q, 0.9, 10 + i), hours_ago=3 - i) for i in range(2)]
    everything = {(u, j) for j in jobs
                  for (u,) in conn.execute("SELECT user_id FROM match_users(%s)", [j])}
    assert len(everything) == 10
    got = []
    for _ in range(4):
        got.append(alerts(conn, 3))
    assert [len(g) for g in got] == [3, 3, 3, 1]
    assert set().union(*map(pairs, got)) == everything == sent(conn)
    assert alerts(conn, 3) == []


@pytest.mark.parametrize("limit, error, message", [
    (None, psycopg.errors.NullValueNotAllowed, "next_job_alerts: limit must not be NULL"),
    (0, psycopg.errors.InvalidParameterValue, "next_job_alerts: limit must be at least 1, got 0"),
    (-3, psycopg.errors.InvalidParameterValue, "limit must be at least 1, got -3"),
])
def test_bad_limits_raise_clear_errors(conn, limit, error, message):
    with pytest.raises(error, match=message):
        conn.execute("SELECT * FROM next_job_alerts(%s)", [limit])


def test_two_feeds_at_once_never_send_a_pair_twice(conn, dsn, q):
    """Two bot processes calling next_job_alerts at the same moment, over
    and over with small limits: every pair goes out exactly once, and the
    caps hold across both."""
    conn.execute("UPDATE jobmatch_settings SET alerts_per_job = 6")
    for uid in range(1, 21):
        seeker(conn, uid, at_similarity(q, 0.95 + uid / 1000, uid))
    for i in range(12):
        new_job(conn, at_similarity(q, 0.95 + i / 500, 100 + i), hours_ago=i / 10)
    barrier = threading.Barrier(2)
    got: list[list[tuple]] = [[], []]
    errors = []

    def feed(k):
        try:
            with jm_db.connect(dsn, autocommit=True) as c:
                barrier.wait()
                while rows := c.execute("SELECT user_id, job_id FROM next_job_alerts(4)"
                                        ).fetchall():
                    got[k].extend(rows)
        except Exception as exc:  # pragma: no cover - shown by the assert
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    both = got[0] + got[1]
    assert got[0] and got[1]  # both fed
    assert len(both) == len(set(both)) == len(sent(conn))
    per_user = conn.execute("SELECT max(c) FROM (SELECT count(*) AS c FROM job_alerts"
                            " GROUP BY user_id) AS x").fetchone()[0]
    per_job = conn.execute("SELECT max(c) FROM (SELECT count(*) AS c FROM job_alerts"
                           " GROUP BY job_id) AS x").fetchone()[0]
    assert per_user == 3 and per_job == 6
    assert len(both) >= 50  # of at most 20 x 3
    assert alerts(conn) == []


def test_an_edit_changes_a_seekers_alerts_once_the_worker_re_embeds(conn):
    """The seeker's vector follows their profile text (the worker's queue);
    the alerts follow the vector and the stated constraints."""
    nurse, driver = unit(1), unit(2)

    def embed(text: str):
        return at_similarity(driver if "Driver" in text else nurse, 0.97, len(text))

    user(conn, 1, job_roles=["Nurse"], preferred_locations=["Ibadan"])
    drain_with(conn, embed)
    first = [new_job(conn, None, title=t, ai_city="Ibadan", ai_state="Oyo")
             for t in ("Nurse", "Driver")]
    drain_with(conn, embed)
    assert pairs(alerts(conn)) == {(1, first[0])}
    # the seeker now drives, in Lagos
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Driver'],"
                 " preferred_locations = ARRAY['Lagos'] WHERE user_id = 1")
    second = [new_job(conn, None, title=t, ai_city=c, ai_state=c)
              for t in ("Nurse", "Driver") for c in ("Ibadan", "Lagos")]
    for jid, text in zip(second, ("Nurse", "Nurse", "Driver", "Driver")):
        set_job_vector(conn, jid, embed(text))
    # before the worker re-embeds: the old vector, the new places (a dry
    # run: rolled back)
    with conn.transaction(force_rollback=True):
        dry = pairs(alerts(conn))
    assert dry == {(1, second[1])}  # the Lagos nurse job
    drain_with(conn, embed)
    assert pairs(alerts(conn)) == {(1, second[3])}  # the Lagos driver job
