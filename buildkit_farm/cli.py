"""The `farm` command line: thin Typer commands; the work lives in the other modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from buildkit_farm import __version__
from buildkit_farm.errors import FarmError

app = typer.Typer(
    name="farm",
    help="Declarative multi-architecture Docker builds on a farm of Buildx nodes.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

FileOption = Annotated[
    Path,
    typer.Option(
        "--file",
        "-f",
        envvar="FARM_FILE",
        help="The farm file (default ./multiarch.toml, or $FARM_FILE).",
    ),
]
DEFAULT_FILE = Path("multiarch.toml")
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"farm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Exit codes: 0 ok, 1 an operation failed, 2 bad input or usage."""


@app.command("inspect")
def inspect_cmd(
    image: Annotated[str, typer.Argument(help="The image, e.g. 127.0.0.1:5000/base:latest.")],
    as_json: JsonOption = False,
    ca: Annotated[
        Optional[Path],
        typer.Option("--ca", envvar="FARM_REGISTRY_CA", help="CA certificate (PEM file or dir) of a TLS registry."),
    ] = None,
) -> None:
    """Show the variants of an image in its registry (platform, digest, size), pulling nothing."""
    import json

    from buildkit_farm.registry import describe, inspect_image

    index = inspect_image(image, ca=ca)
    typer.echo(json.dumps(index.to_dict(), indent=2) if as_json else describe(index))


def main() -> None:
    """Entry point: one handler turns a FarmError into a message and its exit code."""
    try:
        app()  # standalone: click handles usage errors itself (exit 2)
    except FarmError as err:
        _report(err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)


def _report(err: FarmError) -> None:
    color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    text = f"error: {err.message}"
    typer.secho(text, err=True, fg="red" if color else None)
    if err.hint:
        typer.echo(f"hint: {err.hint}", err=True)
