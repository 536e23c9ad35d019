"""Benchmark suite for blit.

Run ``python -m benchmarks local --help`` for the local (same-machine) benchmark runner,
which times ``blit`` against ``rsync`` and ``cp`` on generated workloads and measures peak
RSS of blit's whole process tree. See ``benchmarks/README.md`` for details.

Modules:
    workloads -- deterministic, fast generation of the benchmark trees
    rss       -- running a command while sampling the peak RSS of its process tree
    runner    -- the timing loop: preparing state, alternating tools, verifying results
    report    -- machine description, Markdown table and JSON output
"""
