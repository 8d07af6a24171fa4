"""Worker, write-path, freshness and memory benchmarks (GitHub issue 4), one command:

    python -m bench.worker_bench [--rows N] [--quick] [--profile] [--out PATH]

Runs on a dedicated embedded PostgreSQL 18 + pgvector (its own data directory,
JOBMATCH_BENCH_WORKER_PGDATA, default /var/tmp/jobmatch-bench-worker/pgdata as
root; database jobmatch_bench_worker, dropped and re-created each run; the
server is stopped at the end if this run started it) or on DATABASE_URL
(refused if it holds jobs or seekers the benchmark did not load, unless
--reset). The schema comes from the project's own `migrate`, switched to
text-embedding-3-small (1536-d). The provider is support/fake_openai.FakeOpenAI
(deterministic vectors, `latency` seconds per request, memoised so the fake
spends no CPU on a text twice) in this process; `jobmatch worker` runs as a
subprocess with DATABASE_URL / OPENAI_API_KEY / OPENAI_BASE_URL pointing at it.

Sections, in this order:
  worker      vectors written per second: the worker's own `drained` log line
              (vectors / seconds of draining, start-up excluded), for
              - the plan's loop (generate_missing_job_embeddings: one request per
                row, a 0.1 s sleep, one UPDATE and commit per row), capped at
                --plan-rows rows, zero-latency and 200 ms providers;
              - `jobmatch worker --once` with an empty queue (start-up cost, idle RSS);
              - `jobmatch worker --once` with the 200 ms provider at several
                concurrencies and request sizes (batch size = max(400, concurrency
                x request size), so a batch keeps every request slot busy), each
                --sweep-repeats times, interleaved;
              - `jobmatch worker --once` with the zero-latency provider: the
                deployment defaults (three times), a larger batch, two workers at
                once, and the defaults with an ivfflat index on the vectors.
              Each run starts from a fresh table (TRUNCATE, INSERT ... SELECT of
              the first rows of a staging table of generated jobs, ANALYZE,
              CHECKPOINT) and records CPU seconds of the worker (wait4), of the
              whole database server (postmaster + children, from /proc) and of
              this process (the fake provider), and the worker's peak RSS (VmHWM).
  profile     (--profile) py-spy on one more zero-latency run: the main thread's
              wall time by phase and the busiest functions.
  memory      the worker's peak RSS per run; table, TOAST and index sizes.
  freshness   a long-running `jobmatch worker` (LISTEN/NOTIFY, --poll-interval 5):
              time from a seeker's preference UPDATE until the vector of the new
              text is visible, and until match_jobs has answered with it.
  write_path  bulk INSERT ... SELECT and COPY of --bulk-rows jobs with and
              without the triggers (ALTER TABLE ... DISABLE TRIGGER USER),
              alternating, median of --repeats; single-row UPDATEs (autocommit)
              that change / do not change the profile text, triggers on and off.

Timings on a shared machine are noisy: every wall time comes with CPU seconds
and the load average, repeated configurations report their median, and
"cpu est" is what one worker could do on an otherwise idle machine (1 / the sum
of worker, database and provider CPU per vector). Results: a table on stdout,
JSON and CSV in bench/results/ (bench/WORKER_RESULTS.md discusses a full run).

One module per thing measured: throughput.py (the worker and memory
sections), pyspy.py (profile), freshness.py, write_path.py; common.py holds
what they share (meters, the bench database, worker runs), report.py the
goals, the table and the CSV, __main__.py the command.
"""
