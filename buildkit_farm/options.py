"""The options several `farm` commands share (typer reads these annotations at run time)."""

# No `from __future__ import annotations`: typer evaluates these annotations.
from pathlib import Path
from typing import Annotated, Optional

import typer

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
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout, on success and on failure (README).")
]
DockerConfigOption = Annotated[
    Optional[Path],
    typer.Option(
        "--docker-config",
        help="Docker config dir: registry logins, contexts and builders (default $DOCKER_CONFIG or ~/.docker).",
    ),
]
LockTimeoutOption = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait for another farm run on this Docker config.")
]


WaitTimeoutOption = Annotated[float, typer.Option("--wait-timeout", help="Seconds to wait for a node's builds.")]
LockTtlOption = Annotated[float, typer.Option("--lock-ttl", help="Seconds until a node lock nobody freed is stale.")]
ReclaimOption = Annotated[bool, typer.Option("--reclaim", help="Change back nodes that run a newer file's settings.")]
NodeArgument = Annotated[str, typer.Argument(help="The farm file's name of the node.")]
