"""cli: whole-process wall time of commands that have little or nothing to do.

Target: ``fdp transform --date D`` for a date with no raw batch answers (exit 2, naming what
exists) in under 0.4 s, start-up and imports included. Reported beside a bare interpreter
start (``python -c pass``) measured in the same run, the floor of any command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Measurement


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=10, help="runs per command (best kept)")


def _best(command: list[str], env: dict[str, str], repeat: int) -> tuple[float, int]:
    """The fastest of ``repeat`` runs of ``command``, and its exit status."""
    times, status = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        status = subprocess.run(command, env=env, capture_output=True, check=False).returncode
        times.append(time.perf_counter() - start)
    return min(times), status


def run(args: argparse.Namespace) -> list[Measurement]:
    fdp = str(Path(sys.executable).with_name("fdp"))
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FDP_")}
        env["FDP_DATA_DIR"] = data
        commands = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "fdp --help": [fdp, "--help"],
            "fdp transform, no batch (exit 2)": [fdp, "transform", "--date", "2024-01-02"],
        }
        results = []
        floor = None
        for step, command in commands.items():
            seconds, status = _best(command, env, args.repeat)
            floor = floor or seconds
            extra = {"exit": status, "x_floor": round(seconds / floor, 2)}
            results.append(Measurement("cli", step, 1, seconds, 0.0, extra))
        return results
