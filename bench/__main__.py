"""Entry point: ``python -m bench STAGE [options]``; ``python -m bench --help`` lists stages."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from bench.harness import report

_NOT_STAGES = {"harness", "cluster", "handwritten", "__main__"}


def _stages() -> list[str]:
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if m.name not in _NOT_STAGES)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True)
    for name in _stages():
        module = importlib.import_module(f"bench.{name}")
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0]))
    args = parser.parse_args()
    report(importlib.import_module(f"bench.{args.stage}").run(args))


if __name__ == "__main__":
    main()
