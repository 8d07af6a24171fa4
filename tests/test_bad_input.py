"""Bad input (issue #11): huge list fields, salaries that are negative,
infinite or NaN, and posted dates in the future or missing. None of them may
fail the application's write, make match_jobs raise, or show up in a text."""


import pytest

from support.cli import jobmatch
from support.data import at_similarity, job, set_job_vector, set_user_vector, unit, user

MAX_PROFILE = 8_000  # docs/matching.md: profile texts are at most 8,000 characters


def words(n, prefix="word"):
    return [f"{prefix}{i}x" for i in range(n)]


def match(conn, user_id, limit=10):
    return conn.execute("SELECT job_id, match_method, match_reasons FROM match_jobs(%s, %s)",
                        [user_id, limit]).fetchall()


def ids(rows):
    return sorted(r[0] for r in rows)


# 1. Huge list fields ---------------------------------------------------------

def test_a_job_title_of_150k_distinct_words_can_be_inserted(conn):
    title = " ".join(words(150_000))
    job_id = job(conn, title=title, ai_required_skills=words(150_000, "skill"),
                 ai_job_titles=words(150_000, "alt"))
    # the document is bounded and still finds the job by its first words
    assert conn.execute("SELECT length(job_document::text) < 200000 FROM canonical_jobs"
                        " WHERE id = %s", [job_id]).fetchone()[0]
    assert conn.execute("SELECT id FROM canonical_jobs WHERE job_document @@ 'word0x & skill0x'"
                        ).fetchall() == [(job_id,)]
    # and an update of such a row works too
    conn.execute("UPDATE canonical_jobs SET title = title || ' more' WHERE id = %s", [job_id])


def test_a_seeker_with_150k_skills_gets_an_answer_from_both_paths(conn):
    skills = words(150_000, "skill")
    roles = words(150_000, "role")
    user(conn, 1, job_roles=roles, technical_skills=skills)
    a = job(conn, title="role0x engineer", ai_required_skills=["skill1x"])
    b = job(conn, title="Plumber", ai_required_skills=["skill2x"])
    job(conn, title="Nothing in common")
    rows = match(conn, 1)
    assert ids(rows) == sorted([a, b]) and {r[1] for r in rows} == {"keyword"}
    assert rows[0][0] == a  # the role match comes first
    # the semantic path too
    base = unit(1)
    set_user_vector(conn, 1, base)
    set_job_vector(conn, a, at_similarity(base, 0.95, 2))
    rows = match(conn, 1)
    assert [r[:2] for r in rows] == [(a, "semantic")]
    assert "Skills: skill1x" in rows[0][2]


def test_migration_0011_recomputes_the_documents_beyond_the_bounds(empty_dsn):
    import psycopg
    from yoyo import get_backend, read_migrations

    from jobmatch.migrate import migrations_dir, yoyo_url

    backend = get_backend(yoyo_url(empty_dsn))
    migrations = read_migrations(str(migrations_dir()))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(
            migrations.__class__([m for m in migrations if m.id < "0011"])))
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        c.execute("INSERT INTO canonical_jobs (title, ai_required_skills) VALUES"
                  " ('Nurse', %s), ('Cook', ARRAY['knife skills'])", [words(60, "skill")])
        before = c.execute("SELECT title, job_document FROM canonical_jobs ORDER BY id").fetchall()
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        after = c.execute("SELECT title, job_document FROM canonical_jobs ORDER BY id").fetchall()
        assert c.execute("SELECT count(*) FROM canonical_jobs WHERE job_document IS DISTINCT FROM"
                         " jobmatch_job_document(title, ai_job_titles, ai_required_skills,"
                         " ai_preferred_skills)").fetchone()[0] == 0
    assert after[1] == before[1]  # within the bounds: the same document
    assert "skill49x" in after[0][1] and "skill50x" not in after[0][1]
    assert "skill50x" in before[0][1]


def test_keyword_queries_of_huge_seekers_are_bounded(conn):
    user(conn, 1, job_roles=words(150_000, "role"), technical_skills=words(150_000, "skill"),
         job_categories=words(150_000, "cat"))
    n_keyword, n_role = conn.execute(
        "SELECT numnode(jobmatch_user_keyword_query(u)), numnode(jobmatch_user_role_query(u))"
        " FROM user_preferences AS u WHERE user_id = 1").fetchone()
    assert 0 < n_keyword < 1000 and 0 < n_role < 1000


def test_profile_texts_of_huge_inputs_are_bounded(conn):
    huge = words(50_000)
    long_text = "x" * 1_000_000
    user(conn, 1, **{f: huge for f in (
        "job_roles", "job_categories", "technical_skills", "soft_skills", "preferred_locations",
        "work_arrangements", "employment_types", "company_size_preference",
        "industry_preferences")}, user_job_input=long_text, user_location_input=long_text,
        experience_level=long_text, salary_min=10**40, salary_max=10**41,
        salary_currency=long_text, years_of_experience=10**1000)
    job_id = job(conn, **{f: huge for f in (
        "ai_job_titles", "ai_job_level", "ai_industry", "ai_required_skills",
        "ai_preferred_skills")}, title=long_text, company=long_text, location=long_text,
        ai_job_function=long_text, ai_country=long_text, ai_work_arrangement=long_text,
        ai_summary=long_text, ai_salary_min=10**40, ai_salary_max=10**41,
        ai_salary_currency=long_text)
    u_text, = conn.execute("SELECT jobmatch_user_profile_text(u) FROM user_preferences AS u"
                           " WHERE user_id = 1").fetchone()
    j_text, = conn.execute("SELECT jobmatch_job_profile_text(j) FROM canonical_jobs AS j"
                           " WHERE id = %s", [job_id]).fetchone()
    assert len(u_text) <= MAX_PROFILE and len(j_text) <= MAX_PROFILE
    # a list keeps its first items, whole (role-focused texts, migration 0012:
    # one "Skills:" part; pay, places and the like are filters, not text)
    assert "Skills: word0x, word1x, word2x" in u_text
    assert "Skills: word0x, word1x" in j_text
    assert f"word{50}x" not in u_text.split("Skills: ")[1].split(". ")[0]


def test_a_normal_list_is_joined_in_full(conn):
    items = [f"Skill number {i}" for i in range(20)]
    assert conn.execute("SELECT jobmatch_join(%s)", [items]).fetchone()[0] == ", ".join(items)


# 2. Salaries that are negative, infinite or NaN -------------------------------

BAD_PAY = ["-5", "NaN", "Infinity", "-Infinity", "0", "1e40"]


@pytest.mark.parametrize("bad", BAD_PAY)
def test_a_bad_job_salary_is_unset_in_reasons_and_texts(conn, bad):
    user(conn, 1, job_roles=["Nurse"], salary_min=1_000_000)
    j = job(conn, title="Nurse", ai_salary_min=bad, ai_salary_max=bad)
    rows = match(conn, 1)
    assert [r[0] for r in rows] == [j]  # never excluded by a pay it does not state
    assert not any(reason.startswith("Pays") for reason in rows[0][2])
    text, = conn.execute("SELECT jobmatch_job_profile_text(j) FROM canonical_jobs AS j"
                         " WHERE id = %s", [j]).fetchone()
    assert "alary" not in text
    row = conn.execute("SELECT salary_min, salary_max FROM match_jobs(1, 10)").fetchone()
    assert row == (None, None)


@pytest.mark.parametrize("bad", BAD_PAY)
def test_a_bad_seeker_salary_is_unset_in_filter_reasons_and_texts(conn, bad):
    user(conn, 1, job_roles=["Nurse"], salary_min=bad, salary_max=bad)
    j = job(conn, title="Nurse", ai_salary_min=2_000_000, ai_salary_max=3_000_000)
    rows = match(conn, 1)
    assert [r[0] for r in rows] == [j]  # the bad range filters nothing out
    assert not any("your minimum" in reason for reason in rows[0][2])
    text, = conn.execute("SELECT jobmatch_user_profile_text(u) FROM user_preferences AS u"
                         " WHERE user_id = 1").fetchone()
    assert "alary" not in text


def test_a_good_salary_with_a_bad_bound_keeps_the_good_one(conn):
    user(conn, 1, job_roles=["Nurse"], salary_min=1_000_000, salary_max="NaN")
    j = job(conn, title="Nurse", ai_salary_min="-5", ai_salary_max=3_000_000)
    too_low = job(conn, title="Nurse", ai_salary_min=100, ai_salary_max="Infinity")
    rows = match(conn, 1)
    assert [r[0] for r in rows] == [j]
    assert "Pays NGN 3M (your minimum: 1M)" in rows[0][2]
    assert too_low not in [r[0] for r in rows]
    # pay is a filter, not embedded (migration 0012); the salary text keeps the good bound
    u_text, = conn.execute("SELECT jobmatch_user_profile_text(u) FROM user_preferences AS u"
                           ).fetchone()
    assert "alary" not in u_text
    assert conn.execute("SELECT jobmatch_salary_text('NGN', 1000000, 'NaN')"
                        ).fetchone() == ("NGN 1,000,000",)
    assert conn.execute("SELECT jobmatch_pay(2.5), jobmatch_pay('NaN'), jobmatch_pay(NULL)"
                        ).fetchone() == (2.5, None, None)


def test_a_near_miss_on_pay_names_only_good_bounds(conn):
    base = unit(1)
    user(conn, 1, job_roles=["Nurse"], salary_min=3_000_000, salary_max="NaN")
    set_user_vector(conn, 1, base)
    j = job(conn, title="Nurse", ai_salary_min="-5", ai_salary_max=2_000_000)
    set_job_vector(conn, j, at_similarity(base, 0.95, 2))
    rows = match(conn, 1)
    assert [r[:2] for r in rows] == [(j, "near_miss")]
    assert rows[0][2][0] == "Pays NGN 2M (you asked for 3M+)"


# 3. Future and NULL posted dates --------------------------------------------

def dated_jobs(conn):
    """A job posted now, one in 2036, one tomorrow morning, one undated; all
    with the seeker's words and vector."""
    base = unit(1)
    user(conn, 1, job_roles=["Nurse"])
    now = job(conn, title="Nurse")
    future = job(conn, title="Nurse", posted_date="2036-01-01")
    soon = job(conn, title="Nurse")
    undated = job(conn, title="Nurse")
    conn.execute("UPDATE canonical_jobs SET posted_date = now() + interval '12 hours'"
                 " WHERE id = %s", [soon])
    conn.execute("UPDATE canonical_jobs SET posted_date = NULL WHERE id = %s", [undated])
    for i, j in enumerate([now, future, soon, undated]):
        set_job_vector(conn, j, at_similarity(base, 0.95, i))
    return base, now, future, soon, undated


def test_future_and_undated_jobs_are_not_offered_by_the_keyword_fallback(conn):
    _, now, future, soon, undated = dated_jobs(conn)
    rows = match(conn, 1)
    assert {r[1] for r in rows} == {"keyword"}
    assert ids(rows) == sorted([now, soon])


def test_future_and_undated_jobs_are_not_offered_by_the_semantic_path(conn):
    base, now, future, soon, undated = dated_jobs(conn)
    set_user_vector(conn, 1, base)
    rows = match(conn, 1)
    assert {r[1] for r in rows} == {"semantic"}
    assert ids(rows) == sorted([now, soon])
    conn.execute("SET jobmatch.exact_search = on")
    assert ids(match(conn, 1)) == sorted([now, soon])


def test_the_future_bound_keeps_the_posted_date_index_usable(conn):
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN SELECT id FROM canonical_jobs WHERE posted_date >= now() - interval '60 days'"
        " AND posted_date <= now() + interval '1 day' ORDER BY posted_date DESC LIMIT 10"))
    assert "canonical_jobs_posted_date_idx" in plan


def test_health_counts_future_and_undated_jobs(conn):
    dated_jobs(conn)
    cur = conn.execute("SELECT * FROM embedding_health")
    h = dict(zip([c.name for c in cur.description], cur.fetchone()))
    assert (h["jobs_future_dated"], h["jobs_undated"]) == (1, 1)
    # the job tomorrow morning is in the window; the 2036 one is not
    assert h["jobs_in_window"] == 2


def test_jobmatch_health_warns_about_future_and_undated_jobs(conn, dsn):
    dated_jobs(conn)
    out = jobmatch(dsn, "health").stdout
    assert "WARNING:      1 job posted more than a day in the future" in out
    assert "WARNING:      1 job without a posted date" in out
