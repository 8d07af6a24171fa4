"""Property-based tests: whatever a seeker or a job row holds, profile texts
come out bounded and non-empty, and match_jobs answers or raises only its
documented errors."""

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# PostgreSQL text cannot hold NUL and UTF-8 cannot hold lone surrogates;
# everything else is fair game: emoji, right-to-left scripts, combining
# marks, control characters, whitespace-only strings.
ANY_TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00",
                                          blacklist_categories=("Cs",)), max_size=40)
SAMPLES = st.sampled_from(["", "   ", "Lagos", "مطور برمجيات", "🚀 Dev 🚀", "Ọ̀gá", "x" * 5000])
TEXT = st.one_of(st.none(), ANY_TEXT, SAMPLES)
TEXT_ARRAY = st.one_of(st.none(), st.lists(st.one_of(st.none(), ANY_TEXT, SAMPLES), max_size=6))
NUMBER = st.one_of(st.none(), st.integers(-10**30, 10**30),
                   st.decimals(allow_nan=False, allow_infinity=False, places=3))
HUGE = st.just("lorem ipsum dolor " * 60000)  # ~1 MB
BOOL = st.one_of(st.none(), st.booleans())

PROFILE = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.data_too_large])

USER_FIELDS = dict(
    job_roles=TEXT_ARRAY, job_categories=TEXT_ARRAY, user_job_input=st.one_of(TEXT, HUGE),
    experience_level=TEXT, years_of_experience=NUMBER, technical_skills=TEXT_ARRAY,
    soft_skills=TEXT_ARRAY, preferred_locations=TEXT_ARRAY, user_location_input=TEXT,
    willing_to_relocate=BOOL, work_arrangements=TEXT_ARRAY, employment_types=TEXT_ARRAY,
    salary_min=NUMBER, salary_max=NUMBER, salary_currency=TEXT,
    company_size_preference=TEXT_ARRAY, industry_preferences=TEXT_ARRAY)

JOB_FIELDS = dict(
    title=TEXT, company=TEXT, description=st.one_of(TEXT, HUGE), location=TEXT,
    ai_job_titles=TEXT_ARRAY, ai_job_function=TEXT, ai_job_level=TEXT_ARRAY,
    ai_industry=TEXT_ARRAY, ai_city=TEXT, ai_state=TEXT, ai_country=TEXT,
    ai_work_arrangement=TEXT, ai_remote_allowed=BOOL, ai_required_skills=TEXT_ARRAY,
    ai_preferred_skills=TEXT_ARRAY,
    ai_years_experience_min=st.one_of(st.none(), st.integers(-2**31, 2**31 - 1)),
    ai_years_experience_max=st.one_of(st.none(), st.integers(-2**31, 2**31 - 1)),
    ai_salary_min=NUMBER, ai_salary_max=NUMBER, ai_salary_currency=TEXT,
    ai_summary=st.one_of(TEXT, HUGE))

# Every free-text field is capped at 1,000 characters and every list is
# short here, so a profile can never grow without bound.
MAX_PROFILE = 40_000


def insert_and_profile(conn, table, fn, key, row):
    cols = list(row)
    with conn.transaction(force_rollback=True):
        conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES"
                     f" ({', '.join(['%s'] * len(cols))})", [row[c] for c in cols])
        text = conn.execute(f"SELECT {fn}(t) FROM {table} t").fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]
    return text, queued


@PROFILE
@given(row=st.fixed_dictionaries({}, optional=USER_FIELDS))
def test_user_profile_text_is_total_and_bounded(conn, row):
    text, queued = insert_and_profile(conn, "user_preferences", "jobmatch_user_profile_text",
                                      "user_id", {"user_id": 1, **row})
    assert text and text.strip() == text and len(text) <= MAX_PROFILE
    assert queued == 1
    # list items are capped at 300 characters, then whitespace runs collapse
    roles = [" ".join(r[:300].split()) for r in (row.get("job_roles") or []) if r and r[:300].split()]
    if roles:
        assert text.startswith("Seeking roles: " + roles[0])
    if text == "Job seeker":
        assert not roles


@PROFILE
@given(row=st.fixed_dictionaries({}, optional=JOB_FIELDS))
def test_job_profile_text_is_total_and_bounded(conn, row):
    text, queued = insert_and_profile(conn, "canonical_jobs", "jobmatch_job_profile_text", "id",
                                      {"posted_date": "2026-01-01", **row})
    assert text and text.strip() == text and len(text) <= MAX_PROFILE
    assert queued == 1


@pytest.fixture
def some_jobs(conn):
    conn.execute("INSERT INTO user_preferences (user_id, job_roles, technical_skills)"
                 " VALUES (1, ARRAY['Welder'], ARRAY['TIG'])")
    conn.execute("INSERT INTO canonical_jobs (title, ai_required_skills)"
                 " SELECT 'Welder ' || g, ARRAY['TIG'] FROM generate_series(1, 150) g")
    return conn


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_id=st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.just(1)),
       limit=st.one_of(st.none(), st.integers(-2**31, 2**31 - 1), st.integers(-3, 120)))
def test_match_jobs_answers_or_raises_only_documented_errors(some_jobs, user_id, limit):
    try:
        rows = some_jobs.execute("SELECT * FROM match_jobs(%s::bigint, %s::integer)",
                                 [user_id, limit]).fetchall()
    except psycopg.errors.NullValueNotAllowed:
        assert user_id is None or limit is None
    except psycopg.errors.InvalidParameterValue as exc:
        assert limit is not None and limit < 1 and "limit must be at least 1" in str(exc)
    else:
        assert user_id is not None and limit is not None and limit >= 1
        assert len(rows) <= min(limit, 100)
        assert len(rows) == (min(limit, 100) if user_id == 1 else 0)


@pytest.fixture
def a_job_and_its_seekers(conn):
    from support.data import MODEL, at_similarity, set_job_vector, unit

    q = unit(0)
    job_id = conn.execute("INSERT INTO canonical_jobs (title) VALUES ('Welder') RETURNING id"
                          ).fetchone()[0]
    set_job_vector(conn, job_id, q)
    with conn.cursor().copy("COPY user_preferences (user_id, job_roles, user_embedding,"
                            " embedding_model) FROM STDIN") as cp:
        for uid in range(1, 131):
            cp.write_row((uid, ["Welder"], at_similarity(q, 0.9, uid), MODEL))
    return conn, job_id


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.just("the job")),
       limit=st.one_of(st.none(), st.integers(-2**31, 2**31 - 1), st.integers(-3, 120)))
def test_match_users_answers_or_raises_only_documented_errors(a_job_and_its_seekers, pick,
                                                              limit):
    conn, job_id = a_job_and_its_seekers
    target = job_id if pick == "the job" else pick
    try:
        rows = conn.execute("SELECT * FROM match_users(%s::bigint, %s::integer)",
                            [target, limit]).fetchall()
    except psycopg.errors.NullValueNotAllowed:
        assert target is None or limit is None
    except psycopg.errors.InvalidParameterValue as exc:
        assert limit is not None and limit < 1 and "limit must be at least 1" in str(exc)
    else:
        assert target is not None and limit is not None and limit >= 1
        assert len(rows) == (min(limit, 100) if target == job_id else 0)
