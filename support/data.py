"""Rows and vectors for the tests: jobs and seekers inserted through the
triggers, unit vectors at a chosen similarity, vectors set by hand, the
queue drained with a function of the text. The template test database's
model is the local one (LOCAL_MODEL)."""

from __future__ import annotations

import numpy as np
from psycopg import sql

DIMS = 384  # the template database's model (multilingual-e5-small)
MODEL = "multilingual-e5-small"
LOCAL_MODEL = (MODEL, "local", DIMS)


def insert(conn, table: str, **fields) -> int:
    cols = list(fields)
    key = "id" if table == "canonical_jobs" else "user_id"
    q = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)), sql.Identifier(key))
    return conn.execute(q, [fields[c] for c in cols]).fetchone()[0]


def job(conn, **fields) -> int:
    fields.setdefault("title", "Data Scientist")
    return insert(conn, "canonical_jobs", **fields)


def user(conn, user_id: int, **fields) -> int:
    return insert(conn, "user_preferences", user_id=user_id, **fields)


def unit(seed: int | None = None, dims: int = DIMS, base: np.ndarray | None = None,
         noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(dims).astype(np.float32) if base is None else base.copy()
    if noise:
        v = v + noise * rng.standard_normal(dims).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def at_similarity(base: np.ndarray, sim: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine similarity with unit `base` is exactly `sim`."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(base.shape[0]).astype(np.float64)
    r -= r.dot(base) * base
    r /= np.linalg.norm(r)
    return (sim * base + np.sqrt(max(0.0, 1 - sim * sim)) * r).astype(np.float32)


def queue_rows(conn) -> list[tuple]:
    return conn.execute(
        "SELECT entity_type, entity_id FROM embedding_queue ORDER BY 1, 2").fetchall()


def set_job_vector(conn, job_id: int, vec, model: str = MODEL) -> None:
    conn.execute("UPDATE canonical_jobs SET job_embedding = %s, job_embedding_model = %s"
                 " WHERE id = %s", [vec, model, job_id])


def set_user_vector(conn, user_id: int, vec, model: str = MODEL) -> None:
    conn.execute("UPDATE user_preferences SET user_embedding = %s, embedding_model = %s"
                 " WHERE user_id = %s", [vec, model, user_id])


def drain_with(conn, fn, worker: str = "t", batch: int = 1000) -> int:
    """Completes every queued row with fn(text) -> vector, through the queue API."""
    from jobmatch import queue

    total = 0
    while rows := queue.claim(conn, worker, batch):
        total += queue.complete(conn, worker, MODEL, rows, [fn(r.text) for r in rows])
    return total


def clustered_jobs(conn, rng, n, clusters, spread, year_of_dates=False):
    """n jobs around `clusters` random centers (unit vectors), loaded by COPY;
    with year_of_dates their posted dates spread over a year (~1/6 in the
    window), else posted now. Returns (centers, job vectors)."""
    centers = rng.standard_normal((clusters, 384)).astype(np.float32)
    vecs = centers[rng.integers(0, clusters, n)] \
        + spread * rng.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    if year_of_dates:
        days = rng.integers(0, 360, n)
        rows = ((f"Job {i}", f"{np.datetime64('today') - int(days[i])}", vecs[i], MODEL)
                for i in range(n))
        columns = "title, posted_date, job_embedding, job_embedding_model"
    else:
        rows = ((f"Job {i}", vecs[i], MODEL) for i in range(n))
        columns = "title, job_embedding, job_embedding_model"
    with conn.cursor().copy(f"COPY canonical_jobs ({columns}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
    return centers, vecs


def index_scans(conn) -> int:
    """Scans of the job vector index so far (statistics flushed first)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute("SELECT idx_scan FROM pg_stat_user_indexes"
                        " WHERE indexrelname = 'canonical_jobs_job_embedding_ann'").fetchone()[0]


# A seeker's stated constraints (prefs), jobs that fit them and jobs that break
# them: one set of rules, checked from the seeker's side (match_jobs) and the
# job's side (match_users).
HARD_FILTER_CASES = [
    # places, unless the job is remote or the seeker would relocate
    (dict(preferred_locations=["Lagos", "Abuja"]),
     [dict(ai_city="Ikeja", ai_state="Lagos"), dict(ai_city="Abuja", ai_state="FCT"),
      dict(ai_city="Kano", ai_state="Kano", ai_remote_allowed=True), dict(ai_city=None)],
     [dict(ai_city="Kano", ai_state="Kano"), dict(ai_city="Enugu", ai_state="Enugu",
                                                 ai_work_arrangement="Hybrid")]),
    (dict(preferred_locations=["Lagos"], willing_to_relocate=True),
     [dict(ai_city="Kano", ai_state="Kano")], []),
    # employment types
    (dict(employment_types=["Full-time", "Contract"]),
     [dict(ai_employment_type="full-time"), dict(ai_employment_type=None)],
     [dict(ai_employment_type="Internship")]),
    # pay ranges must overlap in the same currency; zero means unset
    (dict(salary_min=3000000, salary_max=6000000),
     [dict(ai_salary_min=2000000, ai_salary_max=3500000), dict(ai_salary_min=5000000),
      dict(ai_salary_max=500, ai_salary_currency="USD"), dict(ai_salary_min=0, ai_salary_max=0)],
     [dict(ai_salary_min=1000000, ai_salary_max=2000000),
      dict(ai_salary_min=7000000, ai_salary_max=9000000), dict(ai_salary_max=2500000)]),
]
