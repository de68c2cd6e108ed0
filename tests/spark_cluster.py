"""A real Spark standalone cluster and a Spark Connect server on 127.0.0.1, for the tests.

The pip-installed pyspark ships ``bin/spark-class`` and ``sbin/start-connect-server.sh``: the
master and each worker are separate JVMs (their own process groups), each worker launches its
executors as child JVMs and those run their own Python workers (``PYSPARK_PYTHON``, this
interpreter, with the fdp under test on ``PYTHONPATH``). Nothing here mocks Spark.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

import fdp

SPARK_HOME = Path(__import__("pyspark").__file__).parent
FDP_SRC = Path(fdp.__file__).parents[1]
HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def spark_env(**extra: str) -> dict[str, str]:
    """The environment of every Spark JVM and driver here: loopback only, this Python for the
    Python workers, the fdp under test importable on executors, no FDP_* of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FDP_", "SPARK_", "PYSPARK"))}
    path = [str(FDP_SRC), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return env | {
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
        "TZ": "UTC",
        **extra,
    }


def _wait(what: str, ready: Any, log: Path, timeout_s: float = START_TIMEOUT_S) -> Any:
    """``ready()``'s first truthy answer, polled; on timeout an error with the log's tail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with suppress(OSError, ValueError):
            if answer := ready():
                return answer
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s; {log}:\n{tail}")


@dataclass
class Worker:
    """One worker JVM; its executors are its child JVMs and write under ``work_dir``."""

    process: subprocess.Popen[bytes]
    work_dir: Path
    log: Path

    def executors(self) -> list[psutil.Process]:
        """The executor JVMs this worker runs now."""
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with suppress(psutil.Error):
                if EXECUTOR_CLASS in " ".join(child.cmdline()):
                    found.append(child)
        return found


@dataclass
class Cluster:
    """A standalone master and its workers on loopback."""

    url: str
    web_url: str
    root: Path
    master: subprocess.Popen[bytes]
    workers: list[Worker] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        """The master's own view (its web UI's ``/json``): workers, applications."""
        with urllib.request.urlopen(f"{self.web_url}/json", timeout=5) as answer:
            state: dict[str, Any] = json.load(answer)
        return state

    def alive_workers(self) -> int:
        return sum(1 for w in self.state()["workers"] if w["state"] == "ALIVE")


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A JVM in its own process group (so stopping it stops its executors too)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the process group of ``process``: TERM, then KILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(wait_s)
            return


def _web_ui(log: Path) -> str | None:
    """The master web UI's address, from its start-up line (its port was picked freely)."""
    for line in log.read_text(errors="replace").splitlines():
        if "MasterWebUI" in line and "started at " in line:
            return line.rsplit("started at ", 1)[1].strip()
    return None


@contextmanager
def standalone_cluster(
    root: Path, *, workers: int = 2, cores: int = 1, memory: str = "2g"
) -> Iterator[Cluster]:
    """A master and ``workers`` workers (``cores`` and ``memory`` each), all registered."""
    root.mkdir(parents=True, exist_ok=True)
    env = spark_env()
    port = free_port()
    url = f"spark://{HOST}:{port}"
    master_log = root / "master.log"
    master = _spawn(
        [
            "org.apache.spark.deploy.master.Master",
            *("--host", HOST, "--port", str(port), "--webui-port", "0"),
        ],
        master_log,
        env,
    )
    cluster = Cluster(url, "", root, master)
    try:
        cluster.web_url = _wait("the Spark master", lambda: _web_ui(master_log), master_log)
        for i in range(workers):
            work_dir = root / f"worker{i}"
            work_dir.mkdir()
            log = root / f"worker{i}.log"
            process = _spawn(
                [
                    "org.apache.spark.deploy.worker.Worker",
                    *("--host", HOST, "--webui-port", "0", "--cores", str(cores)),
                    *("--memory", memory, "--work-dir", str(work_dir), url),
                ],
                log,
                env,
            )
            cluster.workers.append(Worker(process, work_dir, log))
        _wait(
            f"{workers} registered workers",
            lambda: cluster.alive_workers() == workers,
            master_log,
        )
        yield cluster
    finally:
        for worker in cluster.workers:
            _stop(worker.process)
        _stop(master)


@contextmanager
def connect_server(root: Path, master: str) -> Iterator[str]:
    """A Spark Connect server driving ``master``; yields its ``sc://`` URL."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = spark_env(
        SPARK_LOG_DIR=str(root / "logs"),
        SPARK_PID_DIR=str(root / "pids"),
        SPARK_IDENT_STRING=f"fdp-test-{port}",
    )
    start = [
        str(SPARK_HOME / "sbin" / "start-connect-server.sh"),
        *("--master", master, "--conf", f"spark.connect.grpc.binding.port={port}"),
        *("--conf", f"spark.connect.grpc.binding.address={HOST}"),
        *("--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC"),
        *("--conf", f"spark.pyspark.python={sys.executable}"),
    ]
    subprocess.run(start, env=env, check=True, capture_output=True)
    logs = root / "logs"
    try:
        log = next(iter(sorted(logs.glob("*.out"))), logs / "connect.out")
        _wait(
            "the Spark Connect server",
            lambda: socket.create_connection((HOST, port), timeout=1).close() is None,
            log,
        )
        yield f"sc://{HOST}:{port}"
    finally:
        subprocess.run(
            [str(SPARK_HOME / "sbin" / "stop-connect-server.sh")],
            env=env,
            check=False,
            capture_output=True,
        )


FDP = str(Path(sys.executable).with_name("fdp"))


def fdp_cli(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``fdp ARGS`` in its own process (one Python process holds one SparkContext), on the fdp
    under test, with ``FDP_*`` from ``settings`` and ``env`` on top; fails the test with its
    output."""
    fdp_env = {f"FDP_{k.upper()}": v for k, v in settings.items()}
    full = spark_env(FDP_DATA_DIR=str(data_dir), **fdp_env, **(env or {}))
    done = subprocess.run([FDP, *args], env=full, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"fdp {' '.join(args)}: {done.stdout}\n{done.stderr[-6000:]}"
    return done


def finished_tasks(worker: Worker, app_id: str) -> int:
    """Tasks the executors of ``app_id`` finished on ``worker`` (their own logs say so)."""
    app = worker.work_dir / app_id
    logs = app.glob("*/stderr") if app.is_dir() else iter(())
    return sum(p.read_text(errors="replace").count("Finished task") for p in logs)
