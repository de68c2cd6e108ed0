"""Spark engine: cleanse + enrich beside Polars on the same bars, where the time goes, and skew.

For each ``--rows`` size: session start-up, then Polars and Spark (local) on the same raw bars;
task metrics from Spark's status store split Spark's task time into shuffle (write + fetch
wait) and compute, and give the tasks' JVM CPU time (the Python workers' time is outside it)
and the time of the stage that computes the indicators (the one running the engine's
``mapInArrow``, found in the stage's operation graph). ``--skew`` adds one symbol with
``--skew-long`` rows beside ``--skew-symbols`` one-year symbols and reports the task-time
spread of that stage (slowest / median task) with long series chunked and kept whole.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from typing import Any

import polars as pl

from bench.harness import Measurement, measure
from bench.transform import synthetic
from fdp.engines import Engine
from fdp.engines._polars import PolarsEngine
from fdp.records import EnrichedStockRecord, Frame, StockRecord

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
YEAR = 252


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000])
    parser.add_argument("--sessions", type=int, default=2000, help="bars per symbol")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--skew", action="store_true", help="also run the skew comparison")
    parser.add_argument("--skew-symbols", type=int, default=400)
    parser.add_argument("--skew-long", type=int, default=100_000)


def run(args: argparse.Namespace) -> list[Measurement]:
    from fdp.engines._spark import SparkEngine
    from fdp.spark_session import build_session

    out: list[Measurement] = []
    with measure("spark", f"session start-up ({args.master})", 0, out):
        session = build_session(args.master)
    for rows in args.rows:
        symbols = max(1, rows // args.sessions)
        raw = bars(symbols, args.sessions)
        for engine in (PolarsEngine(), SparkEngine(session)):
            with measure("spark", f"{engine.name} cleanse+enrich", raw.height, out) as extra:
                extra |= timed_run(engine, raw, session if engine.name == "spark" else None)
    if args.skew:
        raw = pl.concat(
            [
                bars(args.skew_symbols, YEAR),
                bars(1, args.skew_long).with_columns(symbol=pl.lit("LONG")),
            ]
        )
        for skew in (True, False):
            step = f"skewed input, chunks {'on' if skew else 'off'}"
            with measure("spark", step, raw.height, out) as extra:
                extra |= timed_run(SparkEngine(session, skew=skew), raw, session)
    return out


def bars(symbols: int, days: int) -> pl.DataFrame:
    """Raw bars on consecutive calendar days (long series reach back centuries)."""
    last = dt.date(2025, 12, 31)
    dates = [last - dt.timedelta(days=d) for d in reversed(range(days))]
    return synthetic(symbols, dates, last)


def timed_run(engine: Engine, raw: pl.DataFrame, session: Any) -> dict[str, Any]:
    """Cleanse and enrich ``raw``; for Spark, the task metrics of the jobs it ran."""
    group = f"bench-{time.monotonic_ns()}"
    if session is not None:
        session.sparkContext.setJobGroup(group, group)
    start = time.perf_counter()
    cleansed = engine.cleanse(Frame(StockRecord, raw))
    middle = time.perf_counter()
    engine.enrich(cleansed.rows, Frame.empty(EnrichedStockRecord), processed_at=NOW)
    walls = {
        "cleanse_s": round(middle - start, 2),
        "enrich_s": round(time.perf_counter() - middle, 2),
    }
    return walls if session is None else walls | task_metrics(session, group)


def task_metrics(session: Any, group: str) -> dict[str, Any]:
    """Task time of the group's jobs, compute vs shuffle, and the tasks of the stage that
    computes the indicators: their total, the slowest and the median task."""
    sc = session.sparkContext
    store = sc._jsc.sc().statusStore()
    tracker = sc.statusTracker()
    run_ms = shuffle_ms = cpu_ms = 0.0
    indicator_tasks: list[float] = []
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info else []:
            tasks = store.taskList(stage, 0, 100_000)
            times = []
            for i in range(tasks.size()):
                metrics = tasks.apply(i).taskMetrics()
                if not metrics.isDefined():
                    continue
                m = metrics.get()
                times.append(float(m.executorRunTime()))
                cpu_ms += m.executorCpuTime() / 1e6
                shuffle_ms += m.shuffleWriteMetrics().writeTime() / 1e6
                shuffle_ms += m.shuffleReadMetrics().fetchWaitTime()
            run_ms += sum(times)
            if times and computes_indicators(store, stage):
                indicator_tasks += times
    slowest = max(indicator_tasks, default=0.0)
    median = statistics.median(indicator_tasks) if indicator_tasks else 0.0
    return {
        "task_s": round(run_ms / 1000, 2),
        "shuffle_s": round(shuffle_ms / 1000, 2),
        "compute_s": round((run_ms - shuffle_ms) / 1000, 2),
        "jvm_cpu_s": round(cpu_ms / 1000, 2),
        "indicator_stage_s": round(sum(indicator_tasks) / 1000, 2),
        "indicator_tasks": len(indicator_tasks),
        "slowest_task_s": round(slowest / 1000, 2),
        "median_task_s": round(median / 1000, 2),
        "spread": round(slowest / median, 2) if median else None,
    }


def computes_indicators(store: Any, stage: int) -> bool:
    """Whether ``stage`` runs the engine's Python pass: its operation graph holds the
    ``mapInArrow`` operator (``MapInArrow`` on Spark 4, ``PythonMapInArrow`` on 3.5)."""
    clusters = [store.operationGraphForStage(stage).rootCluster()]
    while clusters:
        cluster = clusters.pop()
        if str(cluster.name()).endswith("MapInArrow"):
            return True
        children = cluster.childClusters()
        clusters += [children.apply(i) for i in range(children.size())]
    return False
