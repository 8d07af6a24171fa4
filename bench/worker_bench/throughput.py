"""Vectors written per second: the original plan's loop, then `jobmatch
worker --once` at several latencies, concurrencies and request sizes, and
with the zero-latency provider (the `worker` and `memory` sections)."""


from __future__ import annotations

import hashlib
import logging
import time

import numpy as np
import psycopg
from psycopg import sql

from support.common import loadavg, log
from support.fake_openai import FakeOpenAI

from .common import (API_KEY, DIMS, MODEL, BenchDb, EmbeddingCache, load_jobs, r, run_workers,
                     ServerCpu, summarise, table_sizes)

# ------------------------------------------------------------------ the plan's loop

class PlanEmbeddingLoop:
    """The original plan's background generator, faithfully: EmbeddingGenerator.
    generate_missing_job_embeddings -> EmbeddingJobMatcher.generate_job_embedding ->
    EmbeddingService.get_embedding / create_job_profile_text, with psycopg 3
    (dict_row for RealDictCursor) instead of psycopg2. One request per row, one
    UPDATE and commit per row, time.sleep(0.1) after each row."""

    def __init__(self, url: str, api_key: str, base_url: str):
        import openai

        self.connection = psycopg.connect(url)  # psycopg2-style: transactions, commit()
        self.openai_client = openai.OpenAI(api_key=api_key, base_url=base_url)
        self.embedding_cache: dict[str, np.ndarray] = {}
        self.errors = 0
        self.log = logging.getLogger("bench.plan")

    def close(self) -> None:
        self.connection.close()
        self.openai_client.close()

    # EmbeddingService -------------------------------------------------------------
    def get_embedding(self, text: str, use_cache: bool = True) -> np.ndarray:
        if not text or not text.strip():
            return np.zeros(1536)
        cache_key = hashlib.md5(text.encode()).hexdigest()
        if use_cache and cache_key in self.embedding_cache:
            return self.embedding_cache[cache_key]
        try:
            response = self.openai_client.embeddings.create(model="text-embedding-3-small",
                                                            input=text)
            embedding = np.array(response.data[0].embedding)
            if use_cache:
                self.embedding_cache[cache_key] = embedding
            return embedding
        except Exception as e:
            self.log.error(f"Error generating embedding: {e}")
            self.errors += 1
            return np.zeros(1536)

    @staticmethod
    def create_job_profile_text(job: dict) -> str:
        profile_parts = []
        title = job.get('title', '') or ''
        company = job.get('company', '') or ''
        if title:
            profile_parts.append(f"Job title: {title}")
        if company:
            profile_parts.append(f"Company: {company}")
        ai_job_titles = job.get('ai_job_titles', []) or []
        ai_job_function = job.get('ai_job_function', '') or ''
        ai_job_level = job.get('ai_job_level', []) or []
        if ai_job_titles:
            profile_parts.append(f"Job variations: {', '.join(ai_job_titles)}")
        if ai_job_function:
            profile_parts.append(f"Job function: {ai_job_function}")
        if ai_job_level:
            profile_parts.append(f"Job level: {', '.join(ai_job_level)}")
        ai_industry = job.get('ai_industry', []) or []
        ai_city = job.get('ai_city', '') or ''
        ai_state = job.get('ai_state', '') or ''
        ai_country = job.get('ai_country', '') or ''
        location = job.get('location', '') or ''
        if ai_industry:
            profile_parts.append(f"Industry: {', '.join(ai_industry)}")
        if ai_city and ai_state:
            profile_parts.append(f"Location: {ai_city}, {ai_state}")
        elif location:
            profile_parts.append(f"Location: {location}")
        if ai_country:
            profile_parts.append(f"Country: {ai_country}")
        ai_work_arrangement = job.get('ai_work_arrangement', '') or ''
        ai_remote_allowed = job.get('ai_remote_allowed', False)
        if ai_work_arrangement:
            profile_parts.append(f"Work arrangement: {ai_work_arrangement}")
        if ai_remote_allowed:
            profile_parts.append("Remote work allowed")
        ai_required_skills = job.get('ai_required_skills', []) or []
        ai_preferred_skills = job.get('ai_preferred_skills', []) or []
        ai_years_experience_min = job.get('ai_years_experience_min', 0) or 0
        ai_years_experience_max = job.get('ai_years_experience_max', 0) or 0
        if ai_required_skills:
            profile_parts.append(f"Required skills: {', '.join(ai_required_skills)}")
        if ai_preferred_skills:
            profile_parts.append(f"Preferred skills: {', '.join(ai_preferred_skills)}")
        if ai_years_experience_min and ai_years_experience_max:
            profile_parts.append(f"Experience required: {ai_years_experience_min}-{ai_years_experience_max} years")
        elif ai_years_experience_min:
            profile_parts.append(f"Minimum experience: {ai_years_experience_min} years")
        ai_salary_min = job.get('ai_salary_min', 0) or 0
        ai_salary_max = job.get('ai_salary_max', 0) or 0
        ai_salary_currency = job.get('ai_salary_currency', '') or ''
        if ai_salary_min and ai_salary_max:
            profile_parts.append(f"Salary: {ai_salary_currency} {ai_salary_min:,} - {ai_salary_max:,}")
        elif ai_salary_min:
            profile_parts.append(f"Minimum salary: {ai_salary_currency} {ai_salary_min:,}")
        description = job.get('description', '') or ''
        ai_summary = job.get('ai_summary', '') or ''
        if ai_summary:
            profile_parts.append(f"Summary: {ai_summary}")
        elif description:
            desc_snippet = description[:300] + "..." if len(description) > 300 else description
            profile_parts.append(f"Description: {desc_snippet}")
        return ". ".join(profile_parts) if profile_parts else "Job posting"

    # EmbeddingJobMatcher ------------------------------------------------------------
    def generate_job_embedding(self, job_id: int) -> bool:
        from psycopg.rows import dict_row

        try:
            cursor = self.connection.cursor(row_factory=dict_row)
            cursor.execute("SELECT * FROM canonical_jobs WHERE id = %s", (job_id,))
            job = cursor.fetchone()
            if not job:
                self.log.warning(f"No job found with id {job_id}")
                return False
            profile_text = self.create_job_profile_text(dict(job))
            embedding = self.get_embedding(profile_text)
            cursor.execute("""
                UPDATE canonical_jobs 
                SET job_embedding = %s,
                    job_embedding_text = %s,
                    job_embedding_updated_at = NOW(),
                    embedding_version = 1
                WHERE id = %s
            """, (embedding.tolist(), profile_text, job_id))
            self.connection.commit()
            self.log.info(f"Generated embedding for job {job_id}")
            return True
        except Exception as e:
            self.log.error(f"Error generating job embedding: {e}")
            self.errors += 1
            self.connection.rollback()
            return False

    # EmbeddingGenerator ---------------------------------------------------------------
    def generate_missing_job_embeddings(self, batch_size: int = 100) -> int:
        try:
            cursor = self.connection.cursor()
            cursor.execute("""
                SELECT id FROM canonical_jobs 
                WHERE job_embedding IS NULL 
                AND posted_date >= CURRENT_DATE - INTERVAL '60 days'
                AND title IS NOT NULL
                LIMIT %s
            """, (batch_size,))
            job_ids = [row[0] for row in cursor.fetchall()]
            if not job_ids:
                return 0
            success_count = 0
            for job_id in job_ids:
                if self.generate_job_embedding(job_id):
                    success_count += 1
                time.sleep(0.1)  # Rate limiting
            return success_count
        except Exception as e:
            self.log.error(f"Error generating job embeddings: {e}")
            self.errors += 1
            return 0


def run_plan(bdb: BenchDb, conn, provider: FakeOpenAI, cap: int, rows: int) -> dict:
    load_jobs(conn, rows)
    meter = ServerCpu(conn)
    plan = PlanEmbeddingLoop(bdb.url, API_KEY, provider.base_url)
    try:
        la0, db0, me0 = loadavg(), meter.total(), time.process_time()
        t0 = time.perf_counter()
        done = plan.generate_missing_job_embeddings(cap)
        wall = time.perf_counter() - t0
        db1, me1 = meter.total(), time.process_time()
    finally:
        plan.close()
    stored = conn.execute("SELECT count(*) FROM canonical_jobs WHERE job_embedding IS NOT NULL"
                          ).fetchone()[0]
    return {"provider_latency_s": provider.latency, "rows_cap": cap, "rows_written": done,
            "rows_stored": stored, "errors": plan.errors, "wall_s": r(wall),
            "vectors_per_s": r(done / wall, 2) if wall else None,
            "ms_per_row": r(wall / done * 1000, 1) if done else None,
            "db_cpu_s": r(db1 - db0) if db0 is not None and db1 is not None else None,
            "client_cpu_s": r(me1 - me0),
            "scheduled_rate_per_s": r(100 / 900, 3),  # the plan schedules 100 jobs every 15 min
            "loadavg_before": la0, "loadavg_after": loadavg()}


# ------------------------------------------------------------------ sections

def section_worker(bdb: BenchDb, conn, cache: EmbeddingCache, args, results: dict) -> None:
    n = args.rows
    out = results.setdefault("worker", {})

    # the plan's loop -----------------------------------------------------------------
    out["plan_baseline"] = []
    for latency in (0.0, args.latency):
        with FakeOpenAI(api_key=API_KEY, latency=latency) as provider:
            cap = args.plan_rows if latency == 0 else max(1, args.plan_rows // 2)
            log(f"plan baseline: {cap} rows, provider latency {latency * 1000:.0f} ms")
            res = run_plan(bdb, conn, provider, cap, min(n, max(cap * 4, 100)))
            log(f"  {res['vectors_per_s']} rows/s ({res['ms_per_row']} ms/row)")
            out["plan_baseline"].append(res)

    # an empty queue: what a worker costs to start, and its RSS when idle -----------------
    with FakeOpenAI(api_key=API_KEY, latency=0.0) as provider:
        load_jobs(conn, 0)
        idle = run_workers(bdb, conn, provider, [], queued=0, timeout=args.timeout)
    out["startup"] = {k: idle[k] for k in ("wall_s", "worker_cpu_s", "worker_peak_rss_mb")}
    startup_cpu = idle["worker_cpu_s"]
    log(f"worker start-up with an empty queue: {idle['wall_s']} s, {startup_cpu} s CPU,"
        f" peak RSS {idle['worker_peak_rss_mb']} MB")

    # 200 ms latency, concurrency sweep -------------------------------------------------
    out["latency_sweep"] = []
    with FakeOpenAI(api_key=API_KEY, latency=args.latency) as provider:
        for rep, (conc, rs) in [(i, x) for i in range(args.sweep_repeats) for x in args.sweep]:
            batch = max(400, conc * rs)
            ceiling = conc * rs / args.latency if args.latency else float("inf")
            rows = min(n, max(args.min_sweep_rows, int(ceiling * args.sweep_seconds)))
            queued = load_jobs(conn, rows)
            log(f"latency {args.latency * 1000:.0f} ms: concurrency {conc}, request size {rs},"
                f" batch {batch}, {rows} rows")
            res = run_workers(bdb, conn, provider,
                              ["--batch-size", batch, "--request-size", rs, "--concurrency", conc],
                              queued=queued, timeout=args.timeout, startup_cpu_s=startup_cpu)
            res.update(provider_latency_s=args.latency, concurrency=conc, request_size=rs,
                       batch_size=batch, provider_ceiling_per_s=r(ceiling, 0), repeat=rep)
            log(f"  {res['vectors_per_s']} vectors/s (db cpu {res.get('db_cpu_ms_per_vector')} ms/vector,"
                f" load {res['loadavg_after'][0]})")
            out["latency_sweep"].append(res)
    out["latency_sweep_summary"] = summarise(
        out["latency_sweep"], lambda x: f"conc {x['concurrency']}, req {x['request_size']}, batch {x['batch_size']}",
        extra=("concurrency", "request_size", "batch_size", "provider_ceiling_per_s"))

    # zero latency ----------------------------------------------------------------------
    out["zero_latency"] = []
    with FakeOpenAI(api_key=API_KEY, latency=0.0) as provider:
        for name, flags, workers, ivfflat in args.zero_configs:
            queued = load_jobs(conn, n)
            index_info = None
            if ivfflat:
                index_info = create_ivfflat(conn, max(1, n // 1000))
            log(f"zero latency: {name} ({' '.join(map(str, flags)) or 'defaults'},"
                f" {workers} worker{'s' * (workers > 1)}), {n} rows")
            res = run_workers(bdb, conn, provider, flags, workers=workers, queued=queued,
                              timeout=args.timeout, startup_cpu_s=startup_cpu)
            res.update(name=name, provider_latency_s=0.0, ivfflat_index=index_info)
            log(f"  {res['vectors_per_s']} vectors/s, peak RSS {res['worker_peak_rss_mb']} MB"
                f" (worker cpu {res.get('worker_cpu_ms_per_vector_net')} ms/vector, db cpu"
                f" {res.get('db_cpu_ms_per_vector')} ms/vector, load {res['loadavg_after'][0]})")
            out["zero_latency"].append(res)
            if ivfflat:
                res["sizes_with_index"] = table_sizes(conn)["canonical_jobs"]
                conn.execute("DROP INDEX IF EXISTS canonical_jobs_job_embedding_ivfflat")
            out["zero_latency_summary"] = summarise(out["zero_latency"], lambda x: x["name"],
                                                    extra=("flags", "workers"))
            if name == "defaults" and "tables_after_zero_latency_defaults" not in results.get("memory", {}):
                results.setdefault("memory", {})["tables_after_zero_latency_defaults"] = \
                    table_sizes(conn)


def create_ivfflat(conn, lists: int) -> dict:
    """The README's per-model partial expression index (empty table: its lists
    are trained on nothing, which changes recall, not the cost of an insert)."""
    t0 = time.perf_counter()
    conn.execute("DROP INDEX IF EXISTS canonical_jobs_job_embedding_ivfflat")
    conn.execute(sql.SQL(
        "CREATE INDEX canonical_jobs_job_embedding_ivfflat ON canonical_jobs USING ivfflat"
        " ((job_embedding::vector({d})) vector_cosine_ops) WITH (lists = {l})"
        " WHERE job_embedding_model = {m}").format(d=sql.Literal(DIMS), l=sql.Literal(lists),
                                                   m=sql.Literal(MODEL)))
    return {"lists": lists, "build_s": r(time.perf_counter() - t0)}
