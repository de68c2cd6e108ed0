"""The ``fdp`` command line: thin commands over ``fdp.pipeline``; the only place that prints.

Exit status: 0 success, 1 a failed run or quality gate, 2 bad usage or bad input.
"""

from fdp.cli.main import main

__all__ = ["main"]
