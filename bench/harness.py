"""Shared by the fault and load benchmarks (bench/chaos.py, bench/bot_load.py)
and so by their short pytest versions (tests/test_chaos.py): a FakeOpenAI
whose 429s say when to retry, bulk seeding with distinct texts, and an
updater thread, and one strict check of every stored vector (verify). The
worker subprocess, the FakeOpenAI and the embedded servers are support/'s
(support/worker.py, support/fake_openai.py, support/server.py), which the
tests use too."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import psycopg

from support.fake_openai import FakeOpenAI, fake_embedding
from support.server import connect
from support.worker import DIMS, MODEL

USER_BASE = 1_000_000  # seeker ids start here, so they never look like job ids

TITLES = ["Welder", "Data Scientist", "Nurse", "Accountant", "Driver", "Chef", "Electrician",
          "Teacher", "Sales Manager", "Backend Engineer", "Pharmacist", "Plumber", "Cashier",
          "Civil Engineer", "Graphic Designer", "Security Guard", "Customer Support Agent",
          "Farm Manager", "Tailor", "Mechanic"]
SKILLS = ["Python", "SQL", "Excel", "TIG", "MIG", "Driving", "Cooking", "Wiring", "Teaching",
          "Negotiation", "Dispensing", "Pipefitting", "Bookkeeping", "AutoCAD", "Photoshop",
          "Patrol", "Zendesk", "Irrigation", "Sewing", "Diagnostics", "Go", "Rust"]
CITIES = ["Lagos", "Abuja", "Ibadan", "Port Harcourt", "Kano", "Enugu", "Benin City", "Kaduna"]


class ChaosOpenAI(FakeOpenAI):
    """FakeOpenAI whose random 429s carry Retry-After, as the real API's do."""

    def __init__(self, *args, retry_after: float = 0.05, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after

    def _next_fault(self):
        kind, retry_after = super()._next_fault()
        if kind == "429" and retry_after is None:
            retry_after = self.retry_after
        return kind, retry_after


# data ---------------------------------------------------------------------------------
def seed(conn, jobs: int, users: int, start: int = 1, new: bool = False) -> None:
    """`jobs` jobs (ids start..) and `users` seekers (ids USER_BASE+start..),
    every profile text distinct, posted in the last 50 days (new: posted
    now). One statement each: the triggers queue them all."""
    if jobs:
        conn.execute(
            """INSERT INTO canonical_jobs (id, title, company, location, ai_city, ai_country,
                   ai_required_skills, ai_preferred_skills, ai_work_arrangement, posted_date,
                   ai_summary)
               SELECT g, (%(titles)s::text[])[1 + g %% 20] || ' ' || g, 'Company ' || (g %% 97),
                      (%(cities)s::text[])[1 + g %% 8], (%(cities)s::text[])[1 + g %% 8], 'Nigeria',
                      ARRAY[(%(skills)s::text[])[1 + g %% 22], (%(skills)s::text[])[1 + (g / 7) %% 22],
                            'tool' || g],
                      ARRAY[(%(skills)s::text[])[1 + (g / 3) %% 22]],
                      CASE WHEN g %% 5 = 0 THEN 'remote' ELSE 'onsite' END,
                      now() - make_interval(days => CASE WHEN %(new)s THEN 0 ELSE g %% 50 END),
                      'Role number ' || g || ' in a growing team'
               FROM generate_series(%(start)s::int, %(end)s::int) AS g""",
            dict(titles=TITLES, skills=SKILLS, cities=CITIES, start=start, end=start + jobs - 1,
                 new=new))
    if users:
        conn.execute(
            """INSERT INTO user_preferences (user_id, job_roles, technical_skills,
                   preferred_locations, years_of_experience, user_job_input)
               SELECT %(base)s + g, ARRAY[(%(titles)s::text[])[1 + g %% 20]],
                      ARRAY[(%(skills)s::text[])[1 + g %% 22], (%(skills)s::text[])[1 + (g / 5) %% 22]],
                      ARRAY[(%(cities)s::text[])[1 + g %% 8]], g %% 15,
                      'seeker ' || g || ' looking for work'
               FROM generate_series(%(start)s::int, %(end)s::int) AS g""",
            dict(base=USER_BASE, titles=TITLES, skills=SKILLS, cities=CITIES, start=start,
                 end=start + users - 1))


class Steady(threading.Thread):
    """Calls step(conn) every `interval` seconds, on a connection of its own,
    until stop(), which returns `done`; a database error is kept in
    `errors` (the scenario decides what it means), never raised."""

    def __init__(self, dsn: str, interval: float, name: str):
        super().__init__(daemon=True, name=name)
        self.dsn, self.interval = dsn, interval
        self.done = 0
        self.errors: list[str] = []
        self._halt = threading.Event()

    def step(self, conn) -> None:
        raise NotImplementedError

    def run(self) -> None:
        with connect(self.dsn) as c:
            next_at = time.monotonic()
            while not self._halt.is_set():
                try:
                    self.step(c)
                except psycopg.Error as exc:
                    self.errors.append(str(exc)[:300])
                next_at += self.interval
                self._halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> int:
        self._halt.set()
        if self.is_alive():
            self.join(30)
        return self.done


class Updater(Steady):
    """Keeps changing the profile texts of random jobs and seekers (each
    update a new, never-seen text) at about `rate` updates a second, on
    its own connection, until stop()."""

    def __init__(self, dsn: str, jobs: int, users: int, rate: float, seed: int = 1,
                 start_id: int = 1):
        super().__init__(dsn, 1.0 / rate, "updater")
        self.jobs, self.users = jobs, users
        self.rng = random.Random(seed)
        self.start_id = start_id

    @property
    def updates(self) -> int:
        return self.done

    def step(self, c) -> None:
        n = self.done + 1
        if self.rng.random() < self.jobs / (self.jobs + self.users):
            cur = c.execute("UPDATE canonical_jobs SET title = %s WHERE id = %s",
                            [f"Revised role rev{n}x", self.start_id + self.rng.randrange(self.jobs)])
        else:
            cur = c.execute("UPDATE user_preferences SET technical_skills = %s WHERE user_id = %s",
                            [[f"skill rev{n}x", "Python"],
                             USER_BASE + self.start_id + self.rng.randrange(self.users)])
        self.done += cur.rowcount


def count(conn, query: str, params=()) -> int:
    return conn.execute(query, params).fetchone()[0]


def dead_letters(conn) -> int:
    return count(conn, "SELECT count(*) FROM embedding_dead_letter")


def leased_by(conn, worker_id: str) -> int:
    return count(conn, "SELECT count(*) FROM embedding_queue WHERE locked_by = %s"
                 " AND locked_until > now()", [worker_id])


# the one check that matters -------------------------------------------------------------
@dataclass
class Verdict:
    rows: int = 0
    correct: int = 0
    missing: list = field(default_factory=list)  # no vector
    stale: list = field(default_factory=list)  # vector of an older text / other model
    bad_hash: list = field(default_factory=list)  # embedding_hash != hash of current text
    bad_vector: list = field(default_factory=list)  # not the provider's vector of the text

    @property
    def ok(self) -> bool:
        return self.rows > 0 and self.correct == self.rows

    def summary(self) -> str:
        parts = [f"{self.correct}/{self.rows} rows correct"]
        for name in ("missing", "stale", "bad_hash", "bad_vector"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name}={len(items)} e.g. {items[:3]}")
        return ", ".join(parts)


def verify(conn, dims: int = DIMS, model: str = MODEL) -> Verdict:
    """Every job and seeker has the vectors of its CURRENT profile text, made
    by `model`: embedding_hash = jobmatch_text_hash(current text), the stored
    text is the current text, the vector equals fake_embedding(text), and the
    role vector fake_embedding(role text) (none when the text has no role)."""
    rows = conn.execute(
        "SELECT 'job', id, jobmatch_job_profile_text(j), job_embedding_text, job_embedding_model,"
        "       job_embedding_hash = jobmatch_text_hash(jobmatch_job_profile_text(j)),"
        "       job_embedding,"
        "       jobmatch_job_role_text(j), job_role_embedding"
        " FROM canonical_jobs AS j"
        " UNION ALL"
        " SELECT 'user', user_id, jobmatch_user_profile_text(u), embedding_text, embedding_model,"
        "       embedding_hash = jobmatch_text_hash(jobmatch_user_profile_text(u)), user_embedding,"
        "       jobmatch_user_role_text(u), user_role_embedding"
        " FROM user_preferences AS u").fetchall()
    v = Verdict(rows=len(rows))
    for kind, ident, current, text, row_model, hash_ok, vec, role, role_vec in rows:
        key = (kind, ident)
        if vec is None:
            v.missing.append(key)
        elif text != current or row_model != model:
            v.stale.append(key)
        elif not hash_ok:
            v.bad_hash.append(key)
        elif not np.allclose(vec.to_numpy(), fake_embedding(current, dims), atol=1e-6):
            v.bad_vector.append(key)
        elif (role_vec is None) != (role is None) or (role is not None and not np.allclose(
                role_vec.to_numpy(), fake_embedding(role, dims), atol=1e-6)):
            v.bad_vector.append(key)
        else:
            v.correct += 1
    return v


def texts_needed(conn) -> int:
    """Distinct texts the rows' vectors are made of: profile and role texts
    (a row sends up to two; identical texts of one kind are one)."""
    return count(conn, """
        SELECT count(DISTINCT (t.kind, t.text)) FROM (
            SELECT 'job' AS kind, jobmatch_job_profile_text(j) AS text FROM canonical_jobs AS j
            UNION ALL SELECT 'job', jobmatch_job_role_text(j) FROM canonical_jobs AS j
            UNION ALL SELECT 'user', jobmatch_user_profile_text(u) FROM user_preferences AS u
            UNION ALL SELECT 'user', jobmatch_user_role_text(u) FROM user_preferences AS u
        ) AS t WHERE t.text IS NOT NULL""")
