"""fdp's benchmarks: ``python -m bench STAGE [options]`` (or ``make bench BENCH_ARGS=...``).

Each stage module in this package defines ``add_arguments(parser)`` and ``run(args)``;
``run`` returns the measurements it made with ``measure``. Results are printed and appended
to ``bench/results/results.jsonl``; they are never asserted in tests.
"""
