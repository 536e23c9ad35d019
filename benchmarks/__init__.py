"""Benchmarks for blit: ``python -m benchmarks {local,remote,delta,load} --help``.

``local`` times ``blit`` against ``rsync`` and ``cp`` on generated workloads and measures the
peak RSS of blit's whole process tree; ``remote`` times blit's daemon transfers against the
rsync daemon over 127.0.0.1. See ``benchmarks/README.md``.

Modules:
    workloads -- deterministic, fast generation of the benchmark trees
    rss       -- running a command while sampling the peak RSS of its process tree
    runner    -- the timing loop: preparing state, alternating tools, verifying results
    remote    -- the remote workloads, rows and targets
    daemons   -- starting and stopping the rsync and blit daemons on 127.0.0.1
    tcp       -- the raw TCP loopback ceiling
    delta     -- blit's delta push against rsync --no-W, and the delta microbenchmarks
    load      -- many concurrent clients of one blit-daemon: verification, RSS, fds, busy
    report    -- machine description, Markdown table and JSON output
"""
