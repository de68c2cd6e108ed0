"""Spark: the transform stage on local[2], a standalone cluster and Spark Connect, beside Polars
and a hand-written Spark SQL job.

For each ``--rows`` size the raw batch (``--sessions`` bars per symbol, bulk Parquet) is landed
once; then each variant runs a full backfill into an empty lake, in its own process (one
SparkContext per process, and the process's peak memory is the run's):

* ``polars``: the embedded engine;
* ``local[2]``: the Spark engine on a local master;
* ``cluster``: the Spark engine on a standalone master with two 1-core workers (``bench.cluster``);
* ``connect``: the Spark engine over Spark Connect, its server driving that cluster;
* ``sql job``: the anchors' "hand-written Spark SQL job" on local[2] (``handwritten``): read
  the raw Parquet, window functions, ``partitionBy("year", "month")`` Parquet.

Each run reports its wall time without session start-up (``startup_s`` beside it), that time
by phase (read, plan = range shuffle + kernel, stage = partition shuffle + file writes,
publish; classic sessions add each phase's task time and shuffle time from Spark's status
store), and the driver's peak memory: the Python process's plus the driver JVM's VmHWM (on
local[2] the JVM also hosts the executors; on the cluster they live in the workers' JVMs; on
Connect the driver is the server's JVM). Every lake is compared with the Polars lake
(``parity``: max abs and rel difference of the indicators, null masks and other columns). The
targets of issue 15 are printed as ratios of the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import polars as pl

from bench import cluster
from bench.harness import Measurement, peak_rss_mib
from bench.transform import _benchmark, synthetic
from fdp import lake
from fdp.calendar import last_sessions
from fdp.config import Settings
from fdp.indicators import computed_columns
from fdp.records import ROW_KEY
from fdp.rejected import REJECTED
from fdp.sources.landing import RawZone
from fdp.spark_session import is_connect

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""The processing time of every run, so lakes compare column by column."""
SOURCE = "simulator"
PARTS = 8
SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.executor.memory": "2g",
}
"""On the cluster and its Connect server as on local[2] (``LOCAL_CONF``): no UI, few shuffle
partitions; executors' heaps fit the workers' 3 GiB."""
T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000])
    parser.add_argument("--sessions", type=int, default=2000, help="bars per symbol")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["polars", "local", "cluster", "connect", "sql"],
        default=["polars", "local", "cluster", "connect", "sql"],
    )


def run(args: argparse.Namespace) -> list[Measurement]:
    out: list[Measurement] = []
    root = Path(args.dir or tempfile.mkdtemp(prefix="fdp-bench-spark-"))
    with _maybe_cluster(root / "cluster", "cluster" in args.only or "connect" in args.only) as url:
        for rows in args.rows:
            out += _size(root / f"rows-{rows}", rows, args, url)
    return out


@contextmanager
def _maybe_cluster(root: Path, wanted: bool) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    with cluster.standalone(root, workers=2, cores=1, memory="3g") as url:
        yield url


def _size(root: Path, rows: int, args: argparse.Namespace, master: str | None) -> list[Measurement]:
    """Land ``rows`` bars once, then run every variant on them and compare the lakes."""
    shutil.rmtree(root, ignore_errors=True)
    settings = Settings(data_dir=str(root))
    day = _land(settings, rows, args.sessions)
    out: list[Measurement] = []
    lakes: dict[str, Path] = {}
    variants: list[tuple[str, list[str]]] = []
    if "polars" in args.only:
        variants.append(("polars", ["polars"]))
    if "local" in args.only:
        variants.append(("local[2]", ["spark", "local[2]"]))
    if "cluster" in args.only and master:
        variants.append(("cluster", ["spark", master]))
    for name, how in variants:
        out.append(_child(name, how, root, day, rows))
        lakes[name] = _keep_lake(root, name)
    if "connect" in args.only and master:
        # Its default parallelism as the cluster reports it to a classic driver (2 cores).
        conf = SPARK_CONF | {"spark.default.parallelism": "2"}
        with cluster.connect(root / "connect", master, conf) as server:
            result = _child("connect", ["spark", server.url], root, day, rows)
            # The server is the driver: its peak, read before it stops, is the run's.
            jvm = cluster.vm_hwm_mib(server.pid)
            result.extra["jvm_peak_mib"] = round(jvm)
            result.peak_rss_mib += jvm
        out.append(result)
        lakes["connect"] = _keep_lake(root, "connect")
    if "sql" in args.only:
        result = _child("sql job", ["sql"], root, day, rows)
        out.append(result)
        lakes["sql job"] = root / "handwritten"
    if "polars" in lakes:
        for m in out:
            if m.step.split(" transform")[0] != "polars":
                name = m.step.removesuffix(" transform")
                m.extra["parity"] = parity(lakes["polars"], lakes[name], full=name != "sql job")
    _targets(out, rows)
    return out


def _land(settings: Settings, rows: int, sessions: int) -> dt.date:
    """The raw batch: ``rows // sessions`` symbols of ``sessions`` bars, in bulk Parquet parts."""
    days = last_sessions(dt.date(2025, 12, 31), sessions)
    bars = synthetic(max(1, rows // sessions), days, days[-1])
    step = -(-bars.height // PARTS)
    zone = RawZone(settings)
    for part in range(PARTS):
        zone.land_parquet(SOURCE, days[-1], bars.slice(part * step, step).to_arrow(), part)
    return days[-1]


def _keep_lake(root: Path, name: str) -> Path:
    """Move the run's lake aside (the next run starts from an empty lake)."""
    kept = root / "lakes" / name.replace("[", "").replace("]", "")
    kept.parent.mkdir(exist_ok=True)
    (root / lake.CURATED).replace(kept)
    shutil.rmtree(root / REJECTED, ignore_errors=True)
    return kept / lake.TABLE


def _child(name: str, how: list[str], root: Path, day: dt.date, rows: int) -> Measurement:
    """Run one variant in a fresh Python process; its last stdout line is its result."""
    log = root / f"{name.replace(' ', '-')}.log"
    command = [sys.executable, "-m", "bench.spark", str(root), day.isoformat(), *how]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with log.open("w") as err:
        done = subprocess.run(
            command, env=cluster.env(), stdout=subprocess.PIPE, stderr=err, text=True, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}); {log}:\n{log.read_text()[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    extra = result["extra"] | {
        "process_s": round(time.perf_counter() - started, 1),
        "load1_before": round(load, 2),
    }
    return Measurement("spark", f"{name} transform", rows, result["seconds"], result["peak"], extra)


def parity(expected: Path, actual: Path, *, full: bool) -> dict[str, Any]:
    """Max abs and rel difference of the indicator columns, partition by partition; rows, keys
    and null masks must agree; with ``full`` every other column must be equal too."""
    max_abs = max_rel = 0.0
    mismatches: list[str] = []
    parts, theirs = _partitions(expected), _partitions(actual)
    if sorted(parts) != sorted(theirs):
        mismatches.append("partitions differ")
    for part in sorted(parts.keys() & theirs.keys()):
        a = pl.read_parquet(parts[part] / "*.parquet").sort(ROW_KEY)
        b = pl.read_parquet(theirs[part] / "*.parquet").sort(ROW_KEY)
        if not a.select(ROW_KEY).equals(b.select(ROW_KEY)):
            mismatches.append(f"{part}: keys differ")
            continue
        shared = [c for c in computed_columns() if c in b.columns]  # the SQL job: the seed's
        diffs = pl.concat(
            [
                a.select(shared),
                b.select(shared).select(pl.all().name.suffix("_b")),
            ],
            how="horizontal",
        ).select(
            *((pl.col(c) - pl.col(f"{c}_b")).abs().max().alias(f"abs_{c}") for c in shared),
            *(
                ((pl.col(c) - pl.col(f"{c}_b")).abs() / pl.col(c).abs()).max().alias(f"rel_{c}")
                for c in shared
            ),
            *(
                (pl.col(c).is_null() != pl.col(f"{c}_b").is_null()).sum().alias(f"nulls_{c}")
                for c in shared
            ),
        )
        row = diffs.row(0, named=True)
        max_abs = max(max_abs, *(row[f"abs_{c}"] or 0.0 for c in shared))
        max_rel = max(max_rel, *(row[f"rel_{c}"] or 0.0 for c in shared))
        mismatches += [f"{part}: {c} nulls" for c in shared if row[f"nulls_{c}"]]
        others = [c for c in a.columns if c not in computed_columns()]
        if full and not a.select(others).equals(b.select(others)):
            mismatches.append(f"{part}: other columns differ")
    return {
        "max_abs": max_abs,
        "max_rel": max_rel,
        "partitions": len(parts),
        "mismatches": mismatches[:5],
    }


def _partitions(table: Path) -> dict[tuple[int, int], Path]:
    """The ``year=/month=`` directories of a table (Spark writes ``month=1``, fdp ``month=01``)."""
    found = {}
    for path in table.glob("year=*/month=*"):
        year, month = (int(p.name.split("=", 1)[1]) for p in (path.parent, path))
        found[(year, month)] = path
    return found


def _targets(out: list[Measurement], rows: int) -> None:
    """Issue 15's targets as ratios of this run; printed, and kept beside the cluster's run."""
    by = {m.step.removesuffix(" transform"): m for m in out}
    targets: dict[str, Any] = {"rows": rows}
    if "cluster" in by and "local[2]" in by:
        targets["cluster / local[2] (<= 1.3)"] = by["cluster"].seconds / by["local[2]"].seconds
    if "sql job" in by:
        for name in ("local[2]", "cluster", "connect"):
            if name in by:
                targets[f"sql job / {name} (>= 2)"] = by["sql job"].seconds / by[name].seconds
    if "cluster" in by:
        targets["cluster driver peak GiB (< 1.5)"] = by["cluster"].peak_rss_mib / 1024
    for name, m in by.items():
        if "parity" in m.extra:
            targets[f"parity {name} max rel (<= 1e-9)"] = m.extra["parity"]["max_rel"]
    rounded = {
        k: round(v, 3) if isinstance(v, float) and v > 1e-3 else v for k, v in targets.items()
    }
    print(f"targets: {json.dumps(rounded)}")
    if "cluster" in by:
        by["cluster"].extra["targets"] = rounded


# One variant, in its own process: ``python -m bench.spark ROOT DAY polars|spark MASTER|sql``.


def _engine_run(root: Path, day: dt.date, how: list[str]) -> dict[str, Any]:
    from fdp.transform import transform

    settings = Settings(data_dir=str(root))
    gate = _benchmark(settings, day)
    if how[0] == "polars":
        from fdp.engines._polars import PolarsEngine

        start = time.perf_counter()
        result = transform(settings, day, gate=gate, engine=PolarsEngine(), now=NOW)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "peak": peak_rss_mib(), "extra": _result(result)}
    from fdp.engines._spark import SparkEngine

    start = time.perf_counter()
    session = _session(how[1])
    startup = time.perf_counter() - start
    phases = _Phases(session)
    with phases.instrumented():
        start = time.perf_counter()
        result = transform(settings, day, gate=gate, engine=SparkEngine(session), now=NOW)
        seconds = time.perf_counter() - start
    extra = {"startup_s": round(startup, 2), **_result(result), **phases.report(seconds)}
    return _with_driver_peak(session, {"seconds": seconds, "extra": extra})


def _result(result: Any) -> dict[str, Any]:
    return {"partitions": result.partitions_replaced, "rows_written": result.rows_written}


def _session(where: str) -> SparkSession:
    from fdp.spark_session import build_session

    if where.startswith("sc://"):
        from pyspark.sql import SparkSession

        return SparkSession.builder.remote(where).getOrCreate()
    return build_session(where, None if where.startswith("local") else SPARK_CONF)


def _with_driver_peak(session: SparkSession, result: dict[str, Any]) -> dict[str, Any]:
    """The Python driver's peak memory plus, on a classic session, its JVM's."""
    python = peak_rss_mib()
    result["extra"]["python_peak_mib"] = round(python)
    result["peak"] = python
    if not is_connect(session):
        jvm = cluster.vm_hwm_mib(session.sparkContext._gateway.proc.pid)  # type: ignore[union-attr]
        result["extra"]["jvm_peak_mib"] = round(jvm)
        result["peak"] += jvm
    return result


class _Phases:
    """Wall time of the engine's phases (and, on a classic session, their tasks' time from
    Spark's status store): the engine's steps are wrapped for the run, each in a job group."""

    STEPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "read": ("SparkEngine.read",),
        "plan": ("collect_arrow",),
        "stage": ("SparkEngine._stage_partitions", "SparkEngine._stage_changes"),
    }

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        self.wall: dict[str, float] = {}

    @contextmanager
    def instrumented(self) -> Iterator[None]:
        from fdp.engines import _spark

        saved: list[tuple[Any, str, Any]] = []
        targets: list[tuple[Any, str, str]] = [(lake, "publish", "publish")]
        for phase, names in self.STEPS.items():
            for name in names:
                owner, attr = (
                    (_spark.SparkEngine, name.split(".")[1]) if "." in name else (_spark, name)
                )
                targets.append((owner, attr, phase))
        for owner, attr, phase in targets:
            original = getattr(owner, attr)
            saved.append((owner, attr, original))
            setattr(owner, attr, self._timed(phase, original))
        try:
            yield
        finally:
            for owner, attr, original in saved:
                setattr(owner, attr, original)

    def _timed(self, phase: str, fn: Callable[..., T]) -> Callable[..., T]:
        @wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> T:
            if not is_connect(self.session):
                self.session.sparkContext.setJobGroup(phase, phase)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[phase] = self.wall.get(phase, 0.0) + time.perf_counter() - start

        return timed

    def report(self, seconds: float) -> dict[str, Any]:
        walls = {f"{p}_s": round(s, 2) for p, s in self.wall.items()}
        walls["other_s"] = round(seconds - sum(self.wall.values()), 2)
        if is_connect(self.session):
            return walls
        tasks = {p: task_metrics(self.session, p) for p in [*self.STEPS, "publish"]}
        return walls | {"tasks": {p: m for p, m in tasks.items() if m["task_s"]}}


def task_metrics(session: SparkSession, group: str) -> dict[str, float]:
    """Task time of the group's jobs: total, shuffle (write time + fetch wait), the rest
    (compute and I/O, the Python workers' time included) and the tasks' JVM CPU time."""
    sc = session.sparkContext
    store = sc._jsc.sc().statusStore()
    tracker = sc.statusTracker()
    run_ms = shuffle_ms = cpu_ms = 0.0
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info else []:
            tasks = store.taskList(stage, 0, 100_000)
            for i in range(tasks.size()):
                metrics = tasks.apply(i).taskMetrics()
                if not metrics.isDefined():
                    continue
                m = metrics.get()
                run_ms += m.executorRunTime()
                cpu_ms += m.executorCpuTime() / 1e6
                shuffle_ms += m.shuffleWriteMetrics().writeTime() / 1e6
                shuffle_ms += m.shuffleReadMetrics().fetchWaitTime()
    return {
        "task_s": round(run_ms / 1000, 2),
        "shuffle_s": round(shuffle_ms / 1000, 2),
        "compute_s": round((run_ms - shuffle_ms) / 1000, 2),
        "jvm_cpu_s": round(cpu_ms / 1000, 2),
    }


def _sql_run(root: Path, day: dt.date) -> dict[str, Any]:
    """The hand-written job on local[2]: start-up, then one Spark job from raw to lake."""
    from bench.handwritten import job

    start = time.perf_counter()
    session = _session("local[2]")
    startup = time.perf_counter() - start
    objects = RawZone(Settings(data_dir=str(root))).objects(SOURCE, day)
    session.sparkContext.setJobGroup("job", "job")
    start = time.perf_counter()
    job(session, objects, str(root / "handwritten"), NOW)
    seconds = time.perf_counter() - start
    extra = {"startup_s": round(startup, 2), "tasks": task_metrics(session, "job")}
    return _with_driver_peak(session, {"seconds": seconds, "extra": extra})


def _main(argv: list[str]) -> None:
    root, day = Path(argv[0]), dt.date.fromisoformat(argv[1])
    result = _sql_run(root, day) if argv[2] == "sql" else _engine_run(root, day, argv[2:])
    print(json.dumps(result))


if __name__ == "__main__":
    _main(sys.argv[1:])
