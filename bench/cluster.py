"""A Spark standalone cluster (master + workers) and a Spark Connect server on 127.0.0.1.

Not a benchmark stage: ``bench spark`` runs the transform on them. The pip-installed pyspark
ships ``bin/spark-class`` and ``sbin/start-connect-server.sh``; each JVM gets its own process
group, so stopping a worker also stops the executor JVMs and Python workers it launched.
Executors inherit ``env()``: this interpreter for their Python workers and this checkout's
``fdp`` and ``bench`` on their path.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyspark

import fdp

SPARK_HOME = Path(pyspark.__file__).parent
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
PATH = [str(Path(fdp.__file__).parents[1]), str(Path(__file__).parents[1])]
"""What executors' Python workers import: this checkout's ``fdp`` and ``bench``."""


def env(**extra: str) -> dict[str, str]:
    """The environment of every Spark JVM and driver here: loopback only, this Python for the
    Python workers, this checkout importable, UTC, no ``FDP_*`` or Spark settings of the caller."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("FDP_", "SPARK_", "PYSPARK"))}
    path = [*PATH, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return kept | {
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
        "TZ": "UTC",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def standalone(
    root: Path, *, workers: int = 2, cores: int = 1, memory: str = "3g"
) -> Iterator[str]:
    """A master and ``workers`` workers (``cores`` and ``memory`` each), all registered;
    yields the master's ``spark://`` URL. Logs and executors' work directories go in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    url = f"spark://{HOST}:{free_port()}"
    master_log = root / "master.log"
    port = url.rsplit(":", 1)[1]
    started = [_spawn("master", ["--host", HOST, "--port", port, "--webui-port", "0"], master_log)]
    try:
        _wait("the Spark master", lambda: "Starting Spark master" in _text(master_log), master_log)
        for i in range(workers):
            work = root / f"worker{i}"
            work.mkdir(exist_ok=True)
            args = ["--host", HOST, "--webui-port", "0", "--cores", str(cores)]
            args += ["--memory", memory, "--work-dir", str(work), url]
            started.append(_spawn("worker", args, root / f"worker{i}.log"))
        _wait(
            f"{workers} registered workers",
            lambda: _text(master_log).count("Registering worker") >= workers,
            master_log,
        )
        yield url
    finally:
        for process in reversed(started):
            _stop(process)


@dataclass(frozen=True, slots=True)
class ConnectServer:
    """A running Spark Connect server: its ``sc://`` URL and its driver JVM's process id."""

    url: str
    pid: int


@contextmanager
def connect(
    root: Path, master: str, conf: Mapping[str, str] | None = None
) -> Iterator[ConnectServer]:
    """A Spark Connect server whose driver runs on ``master`` (``local[2]`` or a standalone
    cluster's URL) with ``conf``; yields its URL and driver process once it accepts sessions."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    daemon_env = env(
        SPARK_LOG_DIR=str(root / "logs"),
        SPARK_PID_DIR=str(root / "pids"),
        SPARK_IDENT_STRING=f"fdp-bench-{port}",
    )
    settings = {
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.grpc.binding.address": HOST,
        "spark.ui.enabled": "false",
        "spark.pyspark.python": sys.executable,
        **(conf or {}),
    }
    command = [str(SPARK_HOME / "sbin" / "start-connect-server.sh"), "--master", master]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    subprocess.run(command, env=daemon_env, check=True, capture_output=True)
    try:
        pid_file = next((root / "pids").glob("*.pid"))
        log = next((root / "logs").glob("*.out"))
        _wait("the Spark Connect server", lambda: _accepts(port), log)
        yield ConnectServer(f"sc://{HOST}:{port}", int(pid_file.read_text()))
    finally:
        stop = SPARK_HOME / "sbin" / "stop-connect-server.sh"
        subprocess.run([str(stop)], env=daemon_env, check=False, capture_output=True)


def _spawn(role: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A master or worker JVM in its own process group, logging to ``log``."""
    main = f"org.apache.spark.deploy.{role}.{role.capitalize()}"
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), main, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env(),
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process``'s group (the JVM and what it launched): TERM, then KILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(15)
            return


def _accepts(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


def _text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def _wait(what: str, ready: Callable[[], bool], log: Path) -> None:
    """Poll ``ready`` until it holds; on timeout fail with the log's tail."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with suppress(OSError):
            if ready():
                return
        time.sleep(0.3)
    raise TimeoutError(
        f"{what} not ready after {START_TIMEOUT_S:.0f} s; {log}:\n{_text(log)[-3000:]}"
    )


def vm_hwm_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of process ``pid``, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(re.split(r"\s+", line)[1]) / 1024
