"""``python -m fdp``: the command line, where no ``fdp`` script is on the PATH."""

from fdp.cli.main import main

main()
