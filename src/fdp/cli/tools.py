"""``fdp bundle``: the deployment artefacts."""

from __future__ import annotations

import click

from fdp.cli import output


@click.command()
@click.option("--output", "target", default="dist/mwaa", show_default=True, help="bundle directory")
@click.option("--project", default=".", show_default=True, help="fdp's source tree")
def bundle(target: str, project: str) -> None:
    """Build the Amazon MWAA bundle: DAG, plugins.zip with the fdp wheel, requirements, startup."""
    from pathlib import Path

    from fdp.orchestration.bundle import build_bundle

    built = build_bundle(Path(target), Path(project).resolve())
    for path in (built.dag, built.plugins_zip, built.requirements, built.startup, built.pools):
        output.say(f"wrote {path}")


COMMANDS = (bundle,)
