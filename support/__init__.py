"""Code the tests (tests/) and the benchmarks (bench/) share, in one place:
neither imports the other's helpers.

  common.py       log(), loadavg(), percentile(), wait_for()
  fake_openai.py  a local OpenAI-compatible embeddings server (deterministic vectors, faults)
  server.py       embedded PostgreSQL servers: a private throwaway one, a configured bench
                  one, and fresh migrated databases on them
  data.py         rows and vectors: jobs, seekers, unit vectors at a given similarity
  worker.py       `jobmatch worker` as a real subprocess against a FakeOpenAI, its JSON log
                  lines, and the checks of what it stored

The pytest fixtures built on these live in tests/conftest.py. The repository
root is on sys.path for both (pytest's `pythonpath`, `python -m bench.X` from
the root)."""
