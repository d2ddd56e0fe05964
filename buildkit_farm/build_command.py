"""`farm build`: its options, and the run: resolve the farm file, then `builds.job` (docs/build.md)."""

# No `from __future__ import annotations`: typer reads every option's annotation at run time.
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from buildkit_farm import envelope
from buildkit_farm.errors import FarmError
from buildkit_farm.options import DEFAULT_FILE, DockerConfigOption, FileOption, JsonOption

if TYPE_CHECKING:
    from buildkit_farm.reconcile.prefetch import Prefetch


def build_cmd(
    targets: Annotated[
        Optional[list[str]], typer.Argument(help="Targets to build (default: all, in file order).")
    ] = None,
    file: FileOption = DEFAULT_FILE,
    var: Annotated[
        list[str], typer.Option("--var", help="NAME=VALUE: fills {NAME} in tags, and bake file variables.")
    ] = [],
    tag: Annotated[list[str], typer.Option("--tag", "-t", help="Tags to push instead of the file's.")] = [],
    build_arg: Annotated[
        list[str], typer.Option("--build-arg", help="KEY=VALUE, over the file's args; a bare KEY takes $KEY.")
    ] = [],
    label: Annotated[list[str], typer.Option("--label", help="KEY=VALUE, over the file's labels.")] = [],
    stage: Annotated[Optional[str], typer.Option("--target", help="The Dockerfile stage to build.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the build cache.")] = False,
    pull: Annotated[bool, typer.Option("--pull", help="Always pull newer base images.")] = False,
    secret: Annotated[list[str], typer.Option("--secret", help="id=ID,env=VAR or id=ID,src=FILE (never shown).")] = [],
    ssh: Annotated[
        list[str], typer.Option("--ssh", help="SSH agent or keys for RUN --mount=type=ssh: default|ID=PATH.")
    ] = [],
    cache_from: Annotated[
        list[str], typer.Option("--cache-from", help="Registry cache to read, e.g. type=registry,ref=R.")
    ] = [],
    cache_to: Annotated[
        list[str], typer.Option("--cache-to", help="Registry cache to write, e.g. type=registry,ref=R,mode=max.")
    ] = [],
    provenance: Annotated[
        Optional[bool], typer.Option("--provenance/--no-provenance", help="Attach a provenance attestation.")
    ] = None,
    sbom: Annotated[Optional[bool], typer.Option("--sbom/--no-sbom", help="Attach an SBOM attestation.")] = None,
    progress: Annotated[str, typer.Option("--progress", help="buildx progress: auto, plain or tty.")] = "auto",
    verify_run: Annotated[
        bool, typer.Option("--verify-run", help="Run every variant on a node of its platform before tagging.")
    ] = False,
    verify_cmd: Annotated[
        Optional[str], typer.Option("--verify-cmd", help="Command for --verify-run (default: the image's CMD).")
    ] = None,
    up: Annotated[
        bool, typer.Option("--up", help="Converge the farm first instead of stopping when it drifted.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check inputs and print the run plan (the bakes and docker commands that would run); run nothing.",
        ),
    ] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the JSON report to FILE.")] = None,
    atomic: Annotated[
        bool, typer.Option("--atomic", help="Move no tag of any target unless every selected target succeeded.")
    ] = False,
    push: Annotated[
        bool,
        typer.Option(
            "--push/--no-push",
            help="Push (default); --no-push builds every platform on its node and writes nothing to any registry.",
        ),
    ] = True,
    metadata_file: Annotated[
        Optional[Path],
        typer.Option(
            "--metadata-file", help="Write what buildx build/bake --metadata-file write (plus farm.*) to FILE."
        ),
    ] = None,
    platform: Annotated[
        list[str], typer.Option("--platform", help="Build only these of each target's platforms: P[,P] (repeatable).")
    ] = [],
    set_: Annotated[
        list[str],
        typer.Option("--set", help="TARGET.KEY=VALUE as bake --set: *.platform, app.tags, app.args.X, app.labels.K..."),
    ] = [],
    docker_config: DockerConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build and push targets across the farm: checked first, no partial tag, verified after."""
    from buildkit_farm import buildx_version
    from buildkit_farm.builds import job as farm_build
    from buildkit_farm.builds import metadata
    from buildkit_farm.builds import overrides as flags
    from buildkit_farm.builds import report as build_report
    from buildkit_farm.builds.resolve import BuildOptions, expand_bake, parse_pairs
    from buildkit_farm.farmfile.load import load_config

    build_report.check_report_path(report)  # before anything runs, so a failed run can still write it
    metadata.check_path(metadata_file)
    reports: list = []
    commands: list[str] = []  # --dry-run --json: the commands go into the document, not to stdout
    where = str(docker_config) if docker_config else None
    drains = None
    if not dry_run:  # buildx answers its version while the file loads (--dry-run runs nothing)
        buildx_version.start(where)
        drains = _drains(where, file)
    try:
        options = BuildOptions(
            vars=parse_pairs(var, flag="--var"),
            tags=tuple(tag),
            build_args=flags.build_args(build_arg, os.environ),
            labels=parse_pairs(label, flag="--label"),
            target=stage,
            no_cache=no_cache,
            pull=pull,
            secrets=tuple(secret),
            ssh=tuple(ssh),
            cache_from=tuple(cache_from),
            cache_to=tuple(cache_to),
            provenance=provenance,
            sbom=sbom,
            # NO_COLOR: buildx's tty display is escape sequences; plain is the same log without them.
            progress="plain" if progress == "auto" and "NO_COLOR" in os.environ else progress,
            verify_run=verify_run or verify_cmd is not None,
            verify_cmd=verify_cmd,
            platforms=flags.parse_platforms(platform),
            sets=flags.parse_sets(set_),
            push=push,
        )
        # the loader, then its caller's one process: bake files resolved by buildx (--var fills their variables)
        config = expand_bake(load_config(file), variables=options.vars, docker_config=where).config
        if not dry_run:  # --dry-run shows the commands for any buildx
            buildx_version.require(where)
        reports, error = farm_build.build(
            config.desired,
            targets or (),
            options,
            docker_config=where,
            up=up,
            dry_run=dry_run,
            atomic=atomic,
            out=commands.append if as_json else print,
            on_wait=lambda m: typer.echo(m, err=True),
            drains=drains,
        )
    except FarmError as err:
        error = err
    finally:
        if drains is not None:
            drains.discard()
    if not dry_run:
        build_report.finish(reports, error, report_path=report)
        metadata.finish(
            metadata_file, reports, docker_config=str(docker_config) if docker_config else None, pushed=push
        )
        if reports and not as_json:
            typer.echo(build_report.render_text(reports))
    if as_json:
        data = {"dry_run": True, "commands": commands} if dry_run else build_report.reports_data(reports, error)
        envelope.emit("build", data, error=error)
    if error is not None:
        raise error


def _drains(docker_config: Optional[str], file: Path) -> "Prefetch":
    """Each node's container inspect, started now, while the file loads: whether a node is
    drained is known before the builds may start beside the farm's check (builds/job.py)."""
    from buildkit_farm.docker import DockerPaths
    from buildkit_farm.reconcile.prefetch import Prefetch

    return Prefetch.for_file(DockerPaths.resolve(docker_config), file)
