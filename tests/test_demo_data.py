"""Tests for jobmatch.demo_data: determinism, shapes, ranges and spread of the demo data."""
from __future__ import annotations

import collections
import datetime as dt
import random
import time

import pytest

from jobmatch import demo_data as dd

TODAY = dt.date(2025, 6, 1)
END = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
FAM = {f["title"]: f for f in dd.FAMILIES}
STATES = {city: state for city, state, _ in dd.CITIES}


@pytest.fixture(scope="module")
def tagged_jobs():
    return dd.generate_jobs_with_family(3000, seed=7, today=TODAY)


@pytest.fixture(scope="module")
def jobs(tagged_jobs):
    return [job for _, job in tagged_jobs]


@pytest.fixture(scope="module")
def seekers():
    return dd.generate_seekers(4000, seed=11)


def _filled(value) -> bool:
    return value not in (None, [])


def _roughly(count: int, total: int, expected: float, tol: float = 0.05) -> bool:
    return abs(count / total - expected) <= tol


# --------------------------------------------------------------------------- vocabulary

def test_families_table_is_well_formed():
    titles = dd.families()
    assert titles == [f["title"] for f in dd.FAMILIES]
    assert 38 <= len(titles) <= 45 and len(set(titles)) == len(titles)
    all_titles = [t for f in dd.FAMILIES for t in [f["title"], *f["variants"]]]
    assert len(all_titles) == len(set(all_titles)), "a title belongs to two families"
    for f in dd.FAMILIES:
        assert 3 <= len(f["variants"]) <= 6, f["title"]
        assert 10 <= len(f["skills"]) <= 15 and len(set(f["skills"])) == len(f["skills"]), f["title"]
        assert f["preferred"] and not set(f["preferred"]) & set(f["skills"]), f["title"]
        assert f["soft"] and f["industries"] and f["function"] and f["manager"]
        assert set(f.get("hubs", [])) <= set(STATES)
        bands = [dd.SALARY_SCALES[f["scale"]][level] for level in dd.LEVELS]
        assert all(0 < lo < hi for lo, hi in bands)
        assert [lo for lo, _ in bands] == sorted(lo for lo, _ in bands), "bands rise with seniority"
    assert len({f["function"] for f in dd.FAMILIES}) >= 15


def test_every_family_has_a_neighbour_and_an_employer():
    for i, neighbours in enumerate(dd._NEIGHBOURS):
        assert neighbours and i not in neighbours
    assert all(dd._EMPLOYERS)


def test_companies_are_many_and_unique():
    assert 70 <= len(dd.COMPANIES) <= 100
    assert len(set(dd.COMPANIES)) == len(dd.COMPANIES)


def test_cities_cover_the_required_places():
    assert STATES["Ikeja"] == STATES["Lekki"] == STATES["Victoria Island"] == STATES["Yaba"] == "Lagos"
    assert STATES["Abuja"] == "FCT" and STATES["Port Harcourt"] == "Rivers" and STATES["Uyo"] == "Akwa Ibom"
    assert len(STATES) == 17


# --------------------------------------------------------------------------- jobs: determinism

def test_jobs_are_deterministic_for_seed_and_today():
    assert dd.generate_jobs(300, seed=3, today=TODAY) == dd.generate_jobs(300, seed=3, today=TODAY)
    assert dd.generate_jobs(300, seed=3, today=TODAY) != dd.generate_jobs(300, seed=4, today=TODAY)


def test_jobs_do_not_use_or_touch_global_random_state():
    random.seed(1)
    state = random.getstate()
    first = dd.generate_jobs(200, today=TODAY)
    assert random.getstate() == state
    random.seed(999)
    assert dd.generate_jobs(200, today=TODAY) == first


def test_today_only_shifts_posted_dates():
    a = dd.generate_jobs(200, seed=5, today=TODAY)
    b = dd.generate_jobs(200, seed=5, today=TODAY + dt.timedelta(days=10))
    for x, y in zip(a, b):
        assert y["posted_date"] - x["posted_date"] == dt.timedelta(days=10)
        assert {**x, "posted_date": None} == {**y, "posted_date": None}


def test_default_today_is_current_utc_date():
    jobs = dd.generate_jobs(100)
    now = dt.datetime.now(dt.timezone.utc)
    for job in jobs:
        assert now - dt.timedelta(days=181) <= job["posted_date"] <= now


def test_prefix_of_a_bigger_run_is_the_smaller_run():
    assert dd.generate_jobs(500, today=TODAY)[:100] == dd.generate_jobs(100, today=TODAY)


def test_zero_and_negative_n():
    assert dd.generate_jobs(0) == [] and dd.generate_seekers(0) == []
    with pytest.raises(ValueError):
        dd.generate_jobs(-1)
    with pytest.raises(ValueError):
        dd.generate_seekers(-1)


def test_job_keys_are_exactly_job_columns(jobs):
    for job in jobs:
        assert tuple(job) == dd.JOB_COLUMNS


def test_job_field_types(jobs):
    str_lists = ("ai_job_titles", "ai_job_level", "ai_industry", "ai_required_skills", "ai_preferred_skills")
    for job in jobs:
        for key in ("title", "company", "description", "location", "ai_job_function", "ai_country"):
            assert isinstance(job[key], str) and job[key], key
        for key in str_lists:
            assert isinstance(job[key], list) and all(isinstance(v, str) for v in job[key]), key
        for key in ("ai_years_experience_min", "ai_years_experience_max", "ai_salary_min", "ai_salary_max"):
            assert job[key] is None or type(job[key]) is int, key
        assert isinstance(job["ai_remote_allowed"], bool)
        assert job["ai_summary"] is None or isinstance(job["ai_summary"], str)
        assert job["company"] in dd.COMPANIES
        assert job["ai_country"] == "Nigeria"


def test_posted_dates_are_utc_and_spread_over_180_days(jobs):
    dates = [job["posted_date"] for job in jobs]
    assert all(d.tzinfo is not None and d.utcoffset() == dt.timedelta(0) for d in dates)
    assert all(END - dt.timedelta(days=180) <= d < END for d in dates)
    recent = sum(d >= END - dt.timedelta(days=60) for d in dates)
    assert _roughly(recent, len(dates), 1 / 3, 0.04)
    months = collections.Counter((END - d).days // 30 for d in dates)
    assert set(months) == set(range(6)) and min(months.values()) > len(dates) / 6 * 0.8


def test_titles_levels_and_title_variants(tagged_jobs):
    for family, job in tagged_jobs:
        fam = FAM[family]
        titles = job["ai_job_titles"]
        assert 1 <= len(titles) <= 3 and len(set(titles)) == len(titles)
        assert titles[0] == job["title"]
        assert set(titles[1:]) <= {fam["title"], *fam["variants"]}
        levels = job["ai_job_level"]
        assert 1 <= len(levels) <= 2 and all(lv in dd.LEVELS for lv in levels)
        if levels[0] == "Manager":
            assert job["title"] == fam["manager"]
        else:
            bare = job["title"].removeprefix("Senior ").removeprefix("Junior ").removeprefix("Lead ")
            assert bare in {fam["title"], *fam["variants"]}
        assert job["ai_job_function"] == fam["function"]
        assert job["ai_industry"] and set(job["ai_industry"]) <= set(fam["industries"])
    assert any(job["title"].startswith("Senior ") for _, job in tagged_jobs)
    assert any(job["title"].startswith("Lead ") for _, job in tagged_jobs)
    assert any(job["title"].startswith("Junior ") for _, job in tagged_jobs)


def test_sector_companies_match_the_job_industry(jobs):
    industry_of = {name: ind for ind, names in dd.COMPANIES_BY_INDUSTRY.items() for name in names}
    sector_jobs = [j for j in jobs if industry_of[j["company"]] != "Diversified"]
    assert len(sector_jobs) > len(jobs) * 0.6
    assert all(industry_of[j["company"]] == j["ai_industry"][0] for j in sector_jobs)


def test_locations_are_consistent(jobs):
    for job in jobs:
        if job["ai_work_arrangement"] == "Remote":
            assert job["location"] == "Remote" and job["ai_city"] is None and job["ai_state"] is None
        else:
            assert STATES[job["ai_city"]] == job["ai_state"]
            assert job["location"].startswith(f"{job['ai_city']}, {job['ai_state']}")
    onsite = [j for j in jobs if j["ai_city"]]
    big_two = sum(j["ai_state"] in ("Lagos", "FCT") for j in onsite)
    assert big_two / len(onsite) > 0.45
    assert {j["ai_city"] for j in onsite} == set(STATES)


def test_work_arrangement_and_remote_flag(tagged_jobs):
    counts = collections.Counter(j["ai_work_arrangement"] for _, j in tagged_jobs)
    assert set(counts) == set(dd.ARRANGEMENTS) and counts["On-site"] > counts["Hybrid"] > 0
    for family, job in tagged_jobs:
        if job["ai_work_arrangement"] == "Remote":
            assert job["ai_remote_allowed"] is True and FAM[family]["remote"]
        elif job["ai_work_arrangement"] == "On-site":
            assert job["ai_remote_allowed"] is False
    hybrid = [j["ai_remote_allowed"] for _, j in tagged_jobs if j["ai_work_arrangement"] == "Hybrid"]
    assert 0 < sum(hybrid) < len(hybrid)


def test_employment_types(jobs):
    counts = collections.Counter(j["ai_employment_type"] for j in jobs)
    assert set(counts) == set(dd.EMPLOYMENT_TYPES)
    assert counts["Full-time"] > len(jobs) / 2
    assert all(j["ai_job_level"][0] == "Entry" for j in jobs if j["ai_employment_type"] == "Internship")


def test_skills(tagged_jobs):
    for family, job in tagged_jobs:
        fam = FAM[family]
        req, pref = job["ai_required_skills"], job["ai_preferred_skills"]
        assert 4 <= len(req) <= 8 and len(set(req)) == len(req)
        assert 1 <= len(pref) <= 4 and len(set(pref)) == len(pref)
        assert set(req) <= set(fam["skills"])
        assert set(pref) <= set(fam["skills"]) | set(fam["preferred"])
        assert not set(req) & set(pref)


def test_years_of_experience(jobs):
    for job in jobs:
        lo, hi = job["ai_years_experience_min"], job["ai_years_experience_max"]
        if hi is not None:
            assert lo is not None and 0 <= lo < hi
        ylo, yhi = dd.YEARS[job["ai_job_level"][0]]
        assert lo is None or ylo <= lo <= yhi
    assert any(j["ai_years_experience_min"] is None for j in jobs)


def test_salaries(tagged_jobs):
    jobs = [job for _, job in tagged_jobs]
    missing = sum(j["ai_salary_min"] is None for j in jobs)
    assert _roughly(missing, len(jobs), 0.20)
    usd = [j for j in jobs if j["ai_salary_currency"] == "USD"]
    assert 0 < len(usd) < len(jobs) * 0.05
    assert all(j["ai_work_arrangement"] == "Remote" for j in usd)
    for family, job in tagged_jobs:
        smin, smax, cur = job["ai_salary_min"], job["ai_salary_max"], job["ai_salary_currency"]
        if smin is None:
            assert smax is None and cur is None
            continue
        assert smax >= smin > 0
        level = job["ai_job_level"][0]
        lo, hi = (dd.USD_BANDS if cur == "USD" else dd.SALARY_SCALES[FAM[family]["scale"]])[level]
        assert lo <= smin <= smax <= hi
        assert cur in ("NGN", "USD")


def test_descriptions_and_summaries(jobs):
    for job in jobs:
        assert job["company"] in job["description"]
        assert job["ai_required_skills"][0] in job["description"]
    lengths = [len(j["description"]) for j in jobs]
    assert sum(n > 300 for n in lengths) > len(jobs) * 0.1
    assert sum(n < 200 for n in lengths) > len(jobs) * 0.1
    missing = sum(j["ai_summary"] is None for j in jobs)
    assert _roughly(missing, len(jobs), 0.30)
    for job in jobs:
        if job["ai_summary"]:
            text = job["ai_summary"].replace(job["company"], "Company")
            assert text.count(". ") <= 1 and text.endswith(".")


def test_spread_over_families_and_companies(tagged_jobs):
    counts = collections.Counter(family for family, _ in tagged_jobs)
    assert set(counts) == set(dd.families())
    assert max(counts.values()) < len(tagged_jobs) * 0.05
    assert len({job["company"] for _, job in tagged_jobs}) >= 70
    assert len({job["title"] for _, job in tagged_jobs}) > 200


def test_generate_jobs_wraps_generate_jobs_with_family(tagged_jobs):
    assert dd.generate_jobs(3000, seed=7, today=TODAY) == [job for _, job in tagged_jobs]


# --------------------------------------------------------------------------- seekers

def test_seekers_are_deterministic_and_independent_of_global_random():
    random.seed(1)
    state = random.getstate()
    first = dd.generate_seekers(300, seed=2)
    assert random.getstate() == state
    random.seed(42)
    assert dd.generate_seekers(300, seed=2) == first
    assert dd.generate_seekers(300, seed=3) != first


def test_seeker_keys_ids_and_types(seekers):
    assert [s["user_id"] for s in seekers] == list(range(1, len(seekers) + 1))
    list_keys = ("job_roles", "job_categories", "technical_skills", "soft_skills", "preferred_locations",
                 "work_arrangements", "employment_types", "company_size_preference", "industry_preferences")
    for s in seekers:
        assert tuple(s) == dd.SEEKER_COLUMNS
        for key in list_keys:
            assert isinstance(s[key], list) and all(isinstance(v, str) for v in s[key]), key
        for key in ("user_job_input", "experience_level", "user_location_input", "salary_currency"):
            assert s[key] is None or isinstance(s[key], str), key
        for key in ("years_of_experience", "salary_min", "salary_max"):
            assert s[key] is None or type(s[key]) is int, key
        assert isinstance(s["willing_to_relocate"], bool)


def test_profile_completeness_mix(seekers):
    fields = [k for k in dd.SEEKER_COLUMNS if k not in ("user_id", "willing_to_relocate")]
    filled = [sum(_filled(s[k]) for k in fields) for s in seekers]
    complete = sum(n == len(fields) for n in filled)
    empty = sum(n == 0 for n in filled)
    assert _roughly(complete, len(seekers), 0.70, 0.03)
    assert _roughly(empty, len(seekers), 0.05, 0.02)
    partial = [s for s, n in zip(seekers, filled) if 0 < n < len(fields)]
    assert _roughly(len(partial), len(seekers), 0.25, 0.03)
    for s in partial:
        assert s["job_roles"]
        assert sum(not _filled(s[k]) for k in fields) >= 4


def test_seeker_values_are_consistent(seekers):
    locations = set(STATES) | {"Lagos", "Remote"}
    for s in seekers:
        if not s["job_roles"]:
            continue
        families = [f for f in dd.FAMILIES if s["job_roles"][0] in [f["title"], *f["variants"]]]
        assert len(families) == 1
        fam = families[0]
        assert 1 <= len(s["job_roles"]) <= 2 and set(s["job_roles"]) <= {fam["title"], *fam["variants"]}
        if s["job_categories"]:
            assert s["job_categories"][0] == fam["function"]
        if s["technical_skills"]:
            skills = s["technical_skills"]
            assert 3 <= len(skills) <= 8 and len(set(skills)) == len(skills)
            assert len(set(skills) - set(fam["skills"])) <= 1
        if s["experience_level"] and s["years_of_experience"] is not None:
            lo, hi = dd.YEARS[s["experience_level"]]
            assert s["experience_level"] in dd.SEEKER_LEVELS and lo <= s["years_of_experience"] <= hi
        if s["salary_min"] is not None:
            assert s["salary_currency"] == "NGN" and s["salary_max"] >= s["salary_min"] >= 840_000
        else:
            assert s["salary_max"] is None and s["salary_currency"] is None
        assert set(s["preferred_locations"]) <= locations
        assert set(s["work_arrangements"]) <= set(dd.ARRANGEMENTS)
        assert set(s["employment_types"]) <= set(dd.EMPLOYMENT_TYPES)
        assert set(s["company_size_preference"]) <= set(dd.COMPANY_SIZES)
        assert set(s["industry_preferences"]) <= set(fam["industries"])
        if "Remote" in s["preferred_locations"] and s["work_arrangements"]:
            assert "Remote" in s["work_arrangements"]


def test_seekers_spread_and_free_text(seekers):
    with_roles = [s for s in seekers if s["job_roles"]]
    families = {f["title"] for s in with_roles for f in dd.FAMILIES
                if s["job_roles"][0] in [f["title"], *f["variants"]]}
    assert families == set(dd.families())
    levels = collections.Counter(s["experience_level"] for s in seekers if s["experience_level"])
    assert set(levels) == set(dd.SEEKER_LEVELS)
    assert any("Remote" in s["preferred_locations"] for s in seekers)
    assert any(s["willing_to_relocate"] for s in seekers) and not all(s["willing_to_relocate"] for s in seekers)
    texts = [s["user_job_input"] for s in seekers if s["user_job_input"]]
    assert len(set(texts)) > len(texts) * 0.5
    assert any(t.lower().startswith("i want a") and " job in " in t for t in texts)
    # neighbouring-family skills appear sometimes, but not often
    off = sum(any(k not in [*f["skills"]] for k in s["technical_skills"])
              for s in with_roles if s["technical_skills"]
              for f in dd.FAMILIES if s["job_roles"][0] in [f["title"], *f["variants"]])
    assert 0 < off < len(with_roles) * 0.3


def test_seekers_have_real_matches_in_jobs(seekers, tagged_jobs):
    index = {t: f["title"] for f in dd.FAMILIES for t in [f["title"], *f["variants"]]}
    by_family = collections.defaultdict(list)
    for family, job in tagged_jobs:
        by_family[family].append(job)
    for s in seekers[:500]:
        if not s["technical_skills"]:
            continue
        candidates = by_family[index[s["job_roles"][0]]]
        assert any(set(s["technical_skills"]) & set(j["ai_required_skills"]) for j in candidates)


# --------------------------------------------------------------------------- the demo's answers

@pytest.mark.slow
def test_demo_seekers_get_their_own_occupation_first_when_one_fits(conn):
    """Through the whole pipeline with the bundled model (profile texts,
    vectors, match_jobs): a demo seeker with a job of their own family that
    fits what they stated gets one (most often first), and unrelated
    families rarely fill lists. Small, so the local model embeds it in ~a minute."""
    from jobmatch.demo import DEMO_DAYS, load_and_embed

    tagged = dd.generate_jobs_with_family(150, seed=7, days=DEMO_DAYS)
    seekers = [s for s in dd.generate_seekers(60, seed=8) if s["job_roles"]][:30]
    load_and_embed(conn, [j for _, j in tagged], seekers)
    ids = [r[0] for r in conn.execute("SELECT id FROM canonical_jobs ORDER BY id")]
    family_of_job = dict(zip(ids, (f for f, _ in tagged)))
    # related: the family itself, its neighbours, families of the same function
    near = {f["title"]: {dd.FAMILIES[i]["title"] for i in dd._NEIGHBOURS[k]} | {f["title"]}
            | {g["title"] for g in dd.FAMILIES if g["function"] == f["function"]}
            for k, f in enumerate(dd.FAMILIES)}
    checked = shown = unrelated_rows = firsts_own = 0
    for s in seekers:
        own = dd.family_of_role(s["job_roles"][0])
        fitting_own = {jid for (jid,) in conn.execute(
            "SELECT j.id FROM canonical_jobs AS j, user_preferences AS u"
            " WHERE u.user_id = %s AND j.posted_date >= current_date - 60"
            "   AND jobmatch_job_fits(jobmatch_lower_set(u.preferred_locations),"
            "       u.willing_to_relocate, jobmatch_lower_set(u.employment_types),"
            "       u.salary_min, u.salary_max, u.salary_currency, j.ai_city, j.ai_state,"
            "       j.ai_country, j.ai_remote_allowed, j.ai_work_arrangement,"
            "       j.ai_employment_type, j.ai_salary_min, j.ai_salary_max, j.ai_salary_currency)",
            [s["user_id"]]) if family_of_job[jid] == own}
        rows = conn.execute("SELECT job_id, match_method FROM match_jobs(%s, 10)",
                            [s["user_id"]]).fetchall()
        families = [family_of_job[jid] for jid, _ in rows]
        if fitting_own:
            checked += 1
            dbg = conn.execute(
                "SELECT j.id, j.title, round((1 - (j.job_embedding <=> u.user_embedding))::numeric, 3)"
                " FROM canonical_jobs j, user_preferences u WHERE u.user_id = %s AND j.id = ANY(%s)"
                " ORDER BY 3 DESC", [s["user_id"], list(fitting_own)]).fetchall()
            best = conn.execute(
                "SELECT j.title, round((1 - (j.job_embedding <=> u.user_embedding))::numeric, 3)"
                " FROM canonical_jobs j, user_preferences u WHERE u.user_id = %s"
                " AND j.posted_date >= current_date - 60 ORDER BY 2 DESC LIMIT 3",
                [s["user_id"]]).fetchall()
            # at least one of their own occupation (the first row is of a
            # related family, not always their own: see the report of #13)
            assert own in families, (s["job_roles"], families, dbg, best)
            firsts_own += families[0] == own
        shown += len(families)
        unrelated_rows += sum(1 for f in families if f not in near[own])
    # own first for all but at most one (the role vectors, migration 0014:
    # 12 of 12 measured; 11 of 12 without them)
    assert checked >= 5 and firsts_own >= checked - 1, (firsts_own, checked)
    # little filler: jobs of neither the seeker's family nor a neighbouring
    # one are rare (a seeker whose own best job is weak can still get one)
    # measured 44 of 156 (28%) when written; 50 of 156 (32%) with the weights
    # fitted with role vectors (skill words 0.3, margin 0.25, role 0.5: on
    # the 400-job demo they cut unrelated rows from 16% to 13%; pooled over
    # both sets 21% either way). A guard against regressions, not the goal
    # (no unrelated job at all)
    assert unrelated_rows <= 0.33 * shown, (unrelated_rows, shown)
