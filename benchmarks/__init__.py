"""The benchmark suite: ``python -m benchmarks --help`` (or ``nox -s bench``).

Scenarios (each on asyncio and on Trio for procrastinate_anyio):

1. defer rate, one job per call and in batches (``defer.py``);
2. drain of a pre-filled queue of no-op async jobs, optionally sweeping
   concurrency and fetch batch size (``drain.py``);
3. sustained throughput, a producer process and one worker together
   (``sustained.py``);
4. defer-to-start latency with an idle worker (``latency.py``);
5. drain of sync (thread) jobs (``sync_drain.py``);
6. statements, transactions and WAL bytes per job (``cost.py``).

``--compare procrastinate,pgqueuer`` runs the defer, drain, latency and cost
scenarios against Procrastinate 3.x and PgQueuer too (``peer_*.py``), in
databases of their own on the same server. Method: ``docs/benchmarks.md``.
"""
