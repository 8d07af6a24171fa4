"""Profile texts are built in SQL and say what the work is: roles, titles,
categories, skills, the seeker's words; places, pay, employment type and
company size are match_jobs' filters, not part of the vector (issue #13).
Two lines: what the work is called (also embedded alone, as the role text:
tests/test_role_vectors.py), then what it involves."""

from support.data import job, user

FULL_USER = dict(
    job_roles=["Data Scientist", "Machine Learning Engineer"], job_categories=["Data & AI"],
    user_job_input="I want remote data work", experience_level="Senior", years_of_experience=6,
    technical_skills=["Python", "SQL", "TensorFlow"], soft_skills=["Communication"],
    preferred_locations=["Lagos", "Abuja"], user_location_input="Lagos mainland",
    willing_to_relocate=True, work_arrangements=["Remote", "Hybrid"],
    employment_types=["Full-time"], salary_min=2000000, salary_max=5000000,
    salary_currency="NGN", company_size_preference=["Startup"],
    industry_preferences=["Fintech"],
)

FULL_JOB = dict(
    title="Senior Data Scientist", company="Kudi Analytics", ai_job_titles=["ML Scientist"],
    ai_job_function="Data & Analytics", ai_job_level=["Senior"], ai_industry=["Fintech"],
    ai_city="Lagos", ai_state="Lagos", ai_country="Nigeria", ai_work_arrangement="Hybrid",
    ai_remote_allowed=True, ai_required_skills=["Python", "Machine Learning"],
    ai_preferred_skills=["Spark"], ai_years_experience_min=3, ai_years_experience_max=5,
    ai_salary_min=3000000, ai_salary_max=6000000, ai_salary_currency="NGN",
    ai_summary="Build credit models.", description="ignored when a summary exists",
)


def user_text(conn, uid):
    return conn.execute("SELECT jobmatch_user_profile_text(u) FROM user_preferences u"
                        " WHERE user_id = %s", [uid]).fetchone()[0]


def job_text(conn, jid):
    return conn.execute("SELECT jobmatch_job_profile_text(j) FROM canonical_jobs j WHERE id = %s",
                        [jid]).fetchone()[0]


def test_full_user_text_is_role_focused(conn):
    user(conn, 1, **FULL_USER)
    assert user_text(conn, 1) == (
        "Seeking roles: Data Scientist, Machine Learning Engineer. Job categories: Data & AI\n"
        "Job interests: I want remote data work. Skills: Python, SQL, TensorFlow")


def test_partial_user_text_skips_missing_parts(conn):
    user(conn, 2, job_roles=["Nurse"], preferred_locations=["Ibadan"], salary_min=900000,
         salary_currency=None)
    assert user_text(conn, 2) == "Seeking roles: Nurse"


def test_empty_user_is_job_seeker(conn):
    user(conn, 3)
    user(conn, 4, job_roles=[], technical_skills=[None, "  "], user_job_input="   ",
         years_of_experience=0, willing_to_relocate=False, salary_min=0, salary_max=100)
    assert user_text(conn, 3) == "Job seeker"
    assert user_text(conn, 4) == "Job seeker"


def test_array_elements_null_and_blank_are_skipped_and_trimmed(conn):
    user(conn, 5, technical_skills=[" Python ", None, "", "SQL"])
    assert user_text(conn, 5) == "Skills: Python, SQL"


def test_full_job_text_is_role_focused(conn):
    jid = job(conn, **FULL_JOB)
    # the summary is left out when the job names skills
    assert job_text(conn, jid) == (
        "Job title: Senior Data Scientist. Job variations: ML Scientist. "
        "Job function: Data & Analytics\nSkills: Python, Machine Learning, Spark")


def test_job_without_skills_uses_summary_or_description_snippet(conn):
    long_description = "x" * 400
    jid = job(conn, title="Driver", ai_city="Kano", location="Kano, Nigeria",
              ai_years_experience_min=2, ai_salary_min=1200000, ai_salary_currency="NGN",
              description=long_description)
    assert job_text(conn, jid) == "Job title: Driver\nDescription: " + "x" * 300 + "..."
    jid = job(conn, title="Driver", ai_summary="Drive the MD around Lagos.",
              description=long_description)
    assert job_text(conn, jid) == "Job title: Driver\nSummary: Drive the MD around Lagos."


def test_empty_job_is_job_posting(conn):
    jid = job(conn, title=None)
    assert job_text(conn, jid) == "Job posting"


def test_huge_free_text_is_capped(conn):
    uid = user(conn, 6, user_job_input="word " * 200000)  # ~1 MB
    text = user_text(conn, uid)
    # capped at 300 characters; the cut falls after a word and leaves no space
    assert text == "Job interests: " + " ".join(["word"] * 60)


def test_amount_formatting_any_magnitude(conn):
    got = conn.execute(
        "SELECT jobmatch_amount(0), jobmatch_amount(999), jobmatch_amount(1000),"
        " jobmatch_amount(123456789012345678), jobmatch_amount(1234.5)").fetchone()
    assert got == ("0", "999", "1,000", "123,456,789,012,345,678", "1,234.5")


def test_text_hash_is_stable_and_distinguishes(conn):
    a, b, c = conn.execute("SELECT jobmatch_text_hash('a'), jobmatch_text_hash('a'),"
                           " jobmatch_text_hash('b')").fetchone()
    assert a == b != c
