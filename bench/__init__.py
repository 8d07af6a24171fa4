"""jobmatch benchmarks (bench.quality, bench.perf, ...)."""
