"""Puts a data set into a fresh database and fills its vectors the way
production does: rows go in, the triggers queue them, jobmatch.batch.drain
claims batches and an embedder writes the vectors back.

The embedder is the bundled local model behind an on-disk cache keyed by
(model, query/passage, sha256 of the text), so a re-run embeds nothing."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobmatch import db as jm_db
from jobmatch.batch import drain
from jobmatch.embedders import Embedded, Item, LocalEmbedder, check_vectors
from jobmatch.migrate import migrate
from support.common import log

from .dataset import Dataset

LOCAL_MODEL = ("multilingual-e5-small", "local", 384)
BENCH_DBNAME = "jobmatch_quality"
JOB_COLUMNS = ("id", "title", "company", "description", "location", "posted_date",
               "ai_job_titles", "ai_job_function", "ai_job_level", "ai_industry", "ai_city",
               "ai_state", "ai_country", "ai_work_arrangement", "ai_remote_allowed",
               "ai_employment_type", "ai_required_skills", "ai_preferred_skills",
               "ai_years_experience_min", "ai_years_experience_max", "ai_salary_min",
               "ai_salary_max", "ai_salary_currency", "ai_summary")
SEEKER_COLUMNS = ("user_id", "job_roles", "job_categories", "user_job_input", "experience_level",
                  "years_of_experience", "technical_skills", "soft_skills", "preferred_locations",
                  "user_location_input", "willing_to_relocate", "work_arrangements",
                  "employment_types", "salary_min", "salary_max", "salary_currency",
                  "company_size_preference", "industry_preferences")


def default_cache() -> Path:
    base = os.environ.get("JOBMATCH_BENCH_CACHE") or Path.home() / ".cache" / "jobmatch-bench"
    return Path(base) / "quality-emb.npz"


# ------------------------------------------------------------------ embeddings

def _read_cache(path: Path) -> dict[bytes, np.ndarray]:
    with np.load(path) as data:
        keys, vectors = data["keys"], data["vectors"]
        if keys.dtype.kind == "S":  # first format: numpy stripped trailing zero bytes
            return {bytes(k).ljust(16, b"\0"): v for k, v in zip(keys, vectors)}
        return {bytes(k): v for k, v in zip(keys, vectors)}


class CachingEmbedder:
    """An Embedder (jobmatch.embedders protocol): vectors from the cache, the
    rest from the local model (loaded only on the first miss)."""

    provider, model, dimensions = "local", LOCAL_MODEL[0], LOCAL_MODEL[2]

    def __init__(self, path: Path | None, inner=None):
        self.path = path
        self._inner = inner
        self.cache: dict[bytes, np.ndarray] = {}
        self.new: dict[bytes, np.ndarray] = {}
        self.hits = self.misses = 0
        if path and path.exists():
            try:
                self.cache = _read_cache(path)
            except (OSError, ValueError, KeyError) as exc:
                log(f"embedding cache {path} unreadable ({exc}); starting empty")

    def key(self, item: Item) -> bytes:
        kind = "query" if item.is_query else "passage"
        return hashlib.sha256(f"{self.model}\0{kind}\0{item.text}".encode()).digest()[:16]

    def embed(self, items: Sequence[Item]) -> Embedded:
        keys = [self.key(it) for it in items]
        out = np.empty((len(items), self.dimensions), dtype=np.float32)
        todo = []
        for i, k in enumerate(keys):
            vec = self.cache.get(k)
            if vec is None:
                vec = self.new.get(k)
            if vec is None:
                todo.append(i)
            else:
                out[i] = vec
        self.hits += len(items) - len(todo)
        self.misses += len(todo)
        if todo:
            if self._inner is None:
                self._inner = LocalEmbedder()
            got = self._inner.embed([items[i] for i in todo]).vectors
            for i, vec in zip(todo, got):
                out[i] = vec
                self.new[keys[i]] = vec
            if len(self.new) >= 512:
                self.save()
        return Embedded(check_vectors(out, len(items), self.dimensions), requests=1 if todo else 0)

    def save(self) -> None:
        """Merges new vectors into the cache file (under a lock, atomic replace)."""
        if not self.path or not self.new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # read-merge-replace under a lock: two runs saving at once keep both
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = {}
            if self.path.exists():
                try:
                    merged = _read_cache(self.path)
                except (OSError, ValueError, KeyError):
                    merged = {}
            merged.update(self.cache)
            merged.update(self.new)
            # raw bytes, not numpy "S16": that would drop trailing zero bytes
            keys = np.frombuffer(b"".join(merged), dtype=np.uint8).reshape(-1, 16)
            vectors = np.stack(list(merged.values())).astype(np.float32)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz")
            os.close(fd)
            try:
                np.savez(tmp, keys=keys, vectors=vectors)
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        self.cache = merged
        self.new = {}


# -------------------------------------------------------------------- database

def _server_admin_url() -> str:
    """A maintenance connection on the server of DATABASE_URL, else the embedded one."""
    return os.environ.get("DATABASE_URL") or jm_db.embedded_url("postgres")


def fresh_database(dbname: str = BENCH_DBNAME) -> str:
    """Drops and recreates `dbname` on the configured server; returns its URL."""
    admin = _server_admin_url()
    if conninfo_to_dict(admin).get("dbname") == dbname:
        raise ValueError(f"refusing to drop the database DATABASE_URL points at ({dbname})")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return make_conninfo(admin, dbname=dbname)


def prepare_database(url: str | None, reset: bool = False, dbname: str = BENCH_DBNAME) -> str:
    """The URL of a migrated database with no jobs or seekers. `url` None: a
    fresh dedicated database `dbname`; a given `url` must be empty unless `reset`."""
    if url is None:
        url = fresh_database(dbname)
    migrate(url, LOCAL_MODEL)
    with jm_db.connect(url, autocommit=True) as conn:
        active = conn.execute("SELECT model FROM embedding_models WHERE is_active").fetchone()
        if not active or active[0] != LOCAL_MODEL[0]:
            raise RuntimeError(f"the database's active model is {active and active[0]}, "
                               f"the benchmark embeds with {LOCAL_MODEL[0]}")
        existing = conn.execute("SELECT (SELECT count(*) FROM canonical_jobs)"
                                " + (SELECT count(*) FROM user_preferences)").fetchone()[0]
        if existing:
            if not reset:
                raise RuntimeError("this database already has jobs or seekers; the benchmark "
                                   "would replace them (pass --reset to allow it)")
            conn.execute("TRUNCATE canonical_jobs, user_preferences RESTART IDENTITY")
    return url


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))) as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


def load(conn: psycopg.Connection, data: Dataset) -> None:
    (now,) = conn.execute("SELECT now()").fetchone()
    jobs = [{**p.row, "posted_date": now - dt.timedelta(days=p.days_ago)} for p in data.postings]
    _copy(conn, "canonical_jobs", JOB_COLUMNS, jobs)
    _copy(conn, "user_preferences", SEEKER_COLUMNS, [s.row for s in data.seekers])
    conn.execute("ANALYZE canonical_jobs")
    conn.execute("ANALYZE user_preferences")


def embed_all(conn: psycopg.Connection, cache: Path | None) -> dict:
    """Drains the queue through the cached local embedder."""
    embedder = CachingEmbedder(cache)
    pending = conn.execute("SELECT count(*) FROM embedding_queue").fetchone()[0]
    started = time.monotonic()
    last = [started]

    def progress(stats) -> None:
        now = time.monotonic()
        if now - last[0] >= 10:
            last[0] = now
            log(f"  embedding {stats.claimed}/{pending} "
                f"(cache hits {embedder.hits}, embedded {embedder.misses}, "
                f"{embedder.misses / max(now - started, 1e-9):.0f} texts/s)")

    try:
        stats = drain(conn, embedder, f"bench-quality-{os.getpid()}", batch_size=64,
                      progress=progress)
    finally:
        embedder.save()
    elapsed = time.monotonic() - started
    # jobs too old to be matched are not embedded (jobmatch_worth_embedding)
    missing = conn.execute(
        "SELECT (SELECT count(*) FROM canonical_jobs WHERE job_embedding IS NULL"
        "        AND jobmatch_worth_embedding('job', id, NULL))"
        " + (SELECT count(*) FROM user_preferences WHERE user_embedding IS NULL)").fetchone()[0]
    if missing or stats.failed:
        raise RuntimeError(f"{missing} rows have no vector after draining ({stats.failed} failed)")
    return {"rows": stats.written, "cache_hits": embedder.hits, "embedded": embedder.misses,
            "seconds": round(elapsed, 1)}
