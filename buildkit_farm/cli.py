"""The `farm` command line: thin Typer commands; the work lives in the other modules."""

# No `from __future__ import annotations`: typer would eval every command's annotation
# strings on each start, `farm --help` included.
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
    add_completion=True,  # `farm --install-completion`: users of a CLI expect it
    rich_markup_mode=None,  # plain click help: importing rich costs ~0.1 s on every `farm --help`
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
    """Exit codes: 0 ok, 1 an operation failed, 2 bad input or usage, 3 (`farm status`) a node is
    not running, 130 interrupted (Ctrl-C)."""


@app.command("validate")
def validate_cmd(file: FileOption = DEFAULT_FILE, as_json: JsonOption = False) -> None:
    """Check the farm file and print its nodes and targets, or every problem in it."""
    import json

    from buildkit_farm.errors import ConfigError
    from buildkit_farm.farmfile.load import load_config

    origins: list[str] = []
    try:
        config = load_config(file)
        if config.bake is not None:  # targets from bake files, resolved by buildx
            from buildkit_farm.farmfile import bake

            expanded = bake.expand(config)
            config, origins = expanded.config, bake.describe(expanded)
    except ConfigError as err:
        if not as_json:
            raise
        issues = [{"path": i.path, "message": i.message, "hint": i.hint, "line": i.line} for i in err.issues]
        typer.echo(json.dumps({"file": err.file, "ok": False, "issues": issues}, indent=2))
        raise typer.Exit(err.exit_code) from None
    from buildkit_farm.farmfile.pitfalls import warnings

    found = warnings(config)
    if as_json:
        summary = {**config.summary(), "warnings": found}
        if origins:
            summary["bake"] = {name: o.describe() for name, o in expanded.origins.items()}
        typer.echo(json.dumps(summary, indent=2))
    else:
        for warning in found:
            typer.echo(f"warning: {warning}", err=True)
        typer.echo(f"{file}: ok\n{config.describe()}" + "".join(f"\n{line}" for line in origins))


@app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the farm file, for editors (taplo / Even Better TOML)."""
    import json

    from buildkit_farm.farmfile.load import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command("init")
def init_cmd(
    file: FileOption = DEFAULT_FILE,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a starter farm file for the local engine: one node, its native platform."""
    import json

    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.farmfile.starter import write_starter

    engine = write_starter(file, force=force)
    config = load_config(file)  # the starter must be valid as written
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "file": str(file),
                    "platform": engine.platform,
                    "detected_from": engine.source,
                    **({"note": engine.note} if engine.note else {}),
                    **config.summary(),
                },
                indent=2,
            )
        )
    else:
        typer.echo(f"wrote {file}: node local ({engine.endpoint}) -> {engine.platform} (from the {engine.source})")
        if engine.note:
            typer.echo(f"note: {engine.note}", err=True)
        typer.echo("next: `farm validate`, then `farm up`")


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

    from buildkit_farm.registry.index import describe
    from buildkit_farm.registry.read import inspect_image

    index = inspect_image(image, ca=ca)
    typer.echo(json.dumps(index.to_dict(), indent=2) if as_json else describe(index))


@app.command("build")
def build_cmd(
    targets: Annotated[
        Optional[list[str]], typer.Argument(help="Targets to build (default: all, in file order).")
    ] = None,
    file: FileOption = DEFAULT_FILE,
    var: Annotated[
        list[str], typer.Option("--var", help="NAME=VALUE: fills {NAME} in tags, and bake file variables.")
    ] = [],
    tag: Annotated[list[str], typer.Option("--tag", "-t", help="Tags to push instead of the file's.")] = [],
    build_arg: Annotated[list[str], typer.Option("--build-arg", help="KEY=VALUE, over the file's args.")] = [],
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
        bool, typer.Option("--dry-run", help="Check inputs and print the docker commands; run nothing.")
    ] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the JSON report to FILE.")] = None,
    atomic: Annotated[
        bool, typer.Option("--atomic", help="Move no tag of any target unless every selected target succeeded.")
    ] = False,
    docker_config: Annotated[
        Optional[Path], typer.Option("--docker-config", help="Docker config dir (default $DOCKER_CONFIG or ~/.docker).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build and push targets across the farm: checked first, no partial tag, verified after."""
    from buildkit_farm.builds import job as farm_build
    from buildkit_farm.builds import report as build_report
    from buildkit_farm.builds.prepare import BuildOptions, parse_pairs
    from buildkit_farm.docker import DockerPaths
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import lock

    build_report.check_report_path(report)  # before anything runs, so a failed run can still write it
    reports: list = []
    try:
        config = load_config(file)
        options = BuildOptions(
            vars=parse_pairs(var, flag="--var"),
            tags=tuple(tag),
            build_args=parse_pairs(build_arg, flag="--build-arg"),
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
            progress=progress,
            verify_run=verify_run or verify_cmd is not None,
            verify_cmd=verify_cmd,
        )
        # Shared for the whole build: builds run together, `farm up`/`down` wait (reconcile/lock.py).
        farm_dir = DockerPaths.resolve(docker_config).farm_dir
        with lock.hold(farm_dir, shared=True, on_wait=lambda m: typer.echo(m, err=True)):
            reports, error = farm_build.build(
                config,
                targets or (),
                options,
                docker_config=str(docker_config) if docker_config else None,
                up=up,
                dry_run=dry_run,
                atomic=atomic,
            )
    except FarmError as err:
        error = err
    if not dry_run:
        build_report.finish(reports, error, report_path=report)
        if reports or as_json:
            typer.echo(build_report.reports_json(reports, error) if as_json else build_report.render_text(reports))
    if error is not None:
        raise error


DockerConfigOption = Annotated[
    Optional[Path],
    typer.Option(
        "--docker-config", help="Docker config dir for contexts and builders (default $DOCKER_CONFIG or ~/.docker)."
    ),
]
LockTimeoutOption = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait for another farm run on this Docker config.")
]


WaitTimeoutOption = Annotated[float, typer.Option("--wait-timeout", help="Seconds to wait for a node's builds.")]
LockTtlOption = Annotated[float, typer.Option("--lock-ttl", help="Seconds until a node lock nobody freed is stale.")]
ReclaimOption = Annotated[bool, typer.Option("--reclaim", help="Change back nodes that run a newer file's settings.")]


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _progress(step, seconds: float) -> None:
    typer.echo(f"  {step.action.symbol} {step.kind} {step.name}: done ({seconds:.1f}s)", err=True)


@app.command("plan")
def plan_cmd(
    file: FileOption = DEFAULT_FILE,
    docker_config: DockerConfigOption = None,
    reclaim: ReclaimOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show what `farm up` would change: + create, ~ update, - remove, and why each thing is unchanged."""
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge, render

    the_plan, _ = converge.plan(load_config(file).desired, docker_config=docker_config, reclaim=reclaim)
    typer.echo(render.plan_json(the_plan) if as_json else render.plan_text(the_plan))


@app.command("up")
def up_cmd(
    file: FileOption = DEFAULT_FILE,
    docker_config: DockerConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `farm plan`).")] = False,
    lock_timeout: LockTimeoutOption = 300.0,
    wait_timeout: WaitTimeoutOption = 300.0,
    lock_ttl: LockTtlOption = 600.0,
    reclaim: ReclaimOption = False,
    as_json: JsonOption = False,
) -> None:
    """Make the contexts and the builder match the file, bootstrap every node and verify it (a node
    restarts only when no build runs on it, under a lock held on the node: docs/runners.md)."""
    import json

    from buildkit_farm.reconcile import converge, render

    def show(the_plan) -> None:
        if not as_json:
            typer.echo(render.plan_text(the_plan))

    result = converge.converge_file(
        file,
        docker_config=docker_config,
        dry_run=dry_run,
        lock_timeout=lock_timeout,
        echo=_err,
        on_plan=show,
        report=None if as_json else _progress,
        reclaim=reclaim,
        guard=converge.Guard(wait_timeout=wait_timeout, lock_ttl=lock_ttl, lock_timeout=lock_timeout, echo=_err),
    )
    if as_json:
        data = {"plan": result.plan.to_dict(), "applied": result.applied}
        if result.status is not None:
            st = result.status
            data["status"] = json.loads(render.status_json(st.builder, st.nodes, pools=st.pools, warnings=st.warnings))
        typer.echo(json.dumps(data, indent=2))
    elif result.status is not None:
        typer.echo("")
        typer.echo(render.status_text(result.status.builder, result.status.nodes, result.status.pools))
    for warning in result.status.warnings if result.status is not None else ():
        # A pool node that is down while its pools are served: reported, not an error.
        typer.secho(f"warning: {warning}", err=True, fg="yellow")


STATUS_OK = ("running", "not observed")  # "not observed": a driver whose nodes farm cannot see
STATUS_NODE_DOWN = 3


@app.command("status")
def status_cmd(
    file: FileOption = DEFAULT_FILE, docker_config: DockerConfigOption = None, as_json: JsonOption = False
) -> None:
    """Each node: endpoint, status, BuildKit version, pinned and detected platforms (emulated marked)."""
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge, render

    st = converge.status(load_config(file).desired, docker_config=docker_config)
    if as_json:
        typer.echo(render.status_json(st.builder, st.nodes, docker_config=st.docker_config, pools=st.pools))
    else:
        typer.echo(render.status_text(st.builder, st.nodes, st.pools))
    if any(n.status not in STATUS_OK for n in st.nodes):
        raise typer.Exit(STATUS_NODE_DOWN)  # scripts: `farm status >/dev/null || farm up`


@app.command("down")
def down_cmd(
    file: FileOption = DEFAULT_FILE,
    docker_config: DockerConfigOption = None,
    keep_state: Annotated[bool, typer.Option("--keep-state", help="Keep the state volumes (the build cache).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed.")] = False,
    lock_timeout: LockTimeoutOption = 300.0,
    wait_timeout: WaitTimeoutOption = 300.0,
    lock_ttl: LockTtlOption = 600.0,
    force: Annotated[bool, typer.Option("--force", help="Do not wait for running builds: they fail.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove the farm's builder and the contexts it owns, and nothing else (after running builds finish)."""
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge, render

    the_plan = converge.down(
        load_config(file).desired,
        docker_config=docker_config,
        keep_state=keep_state,
        dry_run=dry_run,
        lock_timeout=lock_timeout,
        echo=_err,
        on_plan=None if as_json else (lambda p: typer.echo(render.plan_text(p))),
        report=None if as_json else _progress,
        guard=converge.Guard(wait_timeout, lock_ttl, lock_timeout, force=force, echo=_err),
    )
    if as_json:
        typer.echo(render.plan_json(the_plan))


NodeArgument = Annotated[str, typer.Argument(help="The farm file's name of the node.")]


@app.command("drain")
def drain_cmd(
    node: NodeArgument,
    file: FileOption = DEFAULT_FILE,
    docker_config: DockerConfigOption = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the other runners (shown by `farm status`).")] = "",
) -> None:
    """Take a node out of new builds (held on the node: every runner sees it); its pool's next node builds."""
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge

    typer.echo(converge.drain(load_config(file).desired, node, docker_config=docker_config, reason=reason).text)


@app.command("undrain")
def undrain_cmd(node: NodeArgument, file: FileOption = DEFAULT_FILE, docker_config: DockerConfigOption = None) -> None:
    """Let a drained node take builds again."""
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge

    typer.echo(converge.drain(load_config(file).desired, node, docker_config=docker_config, undo=True).text)


@app.command("lint")
def lint_cmd(
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Dockerfiles, folders or target names (default: every target of the farm file).", show_default=False
        ),
    ] = None,
    file: FileOption = DEFAULT_FILE,
    platform: Annotated[
        Optional[list[str]],
        typer.Option(
            "--platform",
            help="For PATHs: the platforms the Dockerfile is built for (repeat, or comma-separated), "
            "e.g. linux/amd64,windows/amd64.",
        ),
    ] = None,
    registry: Annotated[
        bool,
        typer.Option(
            "--registry", help="Also read each FROM image from its registry: a manifest list with every platform built?"
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check Dockerfiles for multi-arch readiness (the book's two rules). Exit 1 on errors."""
    import functools
    import json

    from buildkit_farm.lint import files, rules
    from buildkit_farm.lint import report as lint_report

    platforms = [p.strip() for value in platform or [] for p in value.split(",") if p.strip()]
    subjects = files.collect_subjects(paths or [], farm_file=file, platforms=platforms)
    inspect = None
    if registry:
        from buildkit_farm.registry.read import inspect_image

        inspect = functools.lru_cache(maxsize=None)(inspect_image)
    result = rules.lint_subjects(subjects, inspect=inspect)
    typer.echo(json.dumps(result.to_dict(files.display_path), indent=2) if as_json else lint_report.render_text(result))
    raise typer.Exit(result.exit_code)


def _interrupt(signum, frame) -> None:
    # typer turns a KeyboardInterrupt into a silent exit 130; an error of our own reaches main(),
    # and `apply_plan` adds which steps were applied and where the backup is.
    from buildkit_farm.errors import Interrupted

    raise Interrupted(
        "interrupted (Ctrl-C)",
        hint="rerun the command; `farm plan` shows what `farm up` would still do",
    )


def main() -> None:
    """Entry point: one handler turns a FarmError into a message and its exit code."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when SIGINT is ignored (nohup, &)
        signal.signal(signal.SIGINT, _interrupt)
    try:
        app(prog_name="farm")  # standalone: click handles usage errors (exit 2); the name keys completion
    except FarmError as err:
        _report(err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)


def _report(err: FarmError) -> None:
    from buildkit_farm.errors import shown

    color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    # Messages quote the user's input: no credential and no control character reaches the terminal.
    text = f"error: {shown(err.message, keep=chr(10))}"
    typer.secho(text, err=True, fg="red" if color else None)
    if err.hint:
        typer.echo(f"hint: {shown(err.hint, keep=chr(10))}", err=True)
