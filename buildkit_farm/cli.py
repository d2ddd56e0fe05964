"""The `farm` command line: thin Typer commands; the work lives in the other modules."""

# No `from __future__ import annotations`: typer would eval every command's annotation
# strings on each start, `farm --help` included.
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from buildkit_farm import __version__, envelope
from buildkit_farm.build_command import build_cmd
from buildkit_farm.errors import FarmError
from buildkit_farm.options import (
    DEFAULT_FILE,
    DockerConfigOption,
    FileOption,
    JsonOption,
    LockTimeoutOption,
    LockTtlOption,
    NodeArgument,
    ReclaimOption,
    WaitTimeoutOption,
)

app = typer.Typer(
    name="farm",
    help="Declarative multi-architecture Docker builds on a farm of Buildx nodes.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,  # `farm --install-completion`: users of a CLI expect it
    rich_markup_mode=None,  # plain click help: importing rich costs ~0.1 s on every `farm --help`
)


def _colored(text: str, color: str) -> str:
    """Coloured on a terminal, never when NO_COLOR is set (to any value): then no escape at all
    (click's secho adds a reset sequence even without a colour)."""
    return typer.style(text, fg=color) if sys.stderr.isatty() and "NO_COLOR" not in os.environ else text


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
    from buildkit_farm.farmfile.load import load_config

    origins: list[str] = []
    config = load_config(file)  # a ConfigError lists every issue (under --json: in error.issues)
    if config.bake is not None:  # targets from bake files, resolved by buildx (a process of its own)
        from buildkit_farm.builds.resolve import expand_bake
        from buildkit_farm.farmfile import bake

        expanded = expand_bake(config, variables={}, docker_config=None)
        config, origins = expanded.config, bake.describe(expanded)
    from buildkit_farm.farmfile.pitfalls import warnings

    found = warnings(config)
    if as_json:
        summary = {**config.summary(), "warnings": found}
        if origins:
            summary["bake"] = {name: o.describe() for name, o in expanded.origins.items()}
        envelope.emit("validate", summary)
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
    from buildkit_farm import docker
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.farmfile.starter import check_writable, local_engine, write_starter

    check_writable(file, force=force)
    engine = local_engine(docker.engine_platform(docker.DockerPaths.resolve()))
    write_starter(file, engine)
    config = load_config(file)  # the starter must be valid as written
    if as_json:
        result = {
            "file": str(file),
            "platform": engine.platform,
            "detected_from": engine.source,
            **({"note": engine.note} if engine.note else {}),
            **config.summary(),
        }
        envelope.emit("init", result)
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
    docker_config: DockerConfigOption = None,
) -> None:
    """Show the variants of an image in its registry (platform, digest, size), pulling nothing."""
    from buildkit_farm.registry.index import describe
    from buildkit_farm.registry.read import inspect_image

    index = inspect_image(image, ca=ca, docker_config=docker_config)
    if as_json:
        envelope.emit("inspect", index.to_dict())
    else:
        typer.echo(describe(index))


app.command("build")(build_cmd)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _progress(step, seconds: float) -> None:
    typer.echo(f"  {step.action.symbol} {step.kind} {step.name}: done ({seconds:.1f}s)", err=True)


PLAN_CHANGES = 2  # `farm plan --detailed-exitcode`: changes to make (as terraform)


@app.command("plan")
def plan_cmd(
    file: FileOption = DEFAULT_FILE,
    docker_config: DockerConfigOption = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 0: nothing to do, 2: changes to make, 1: an error."),
    ] = False,
    reclaim: ReclaimOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show what `farm up` would change: + create, ~ update, - remove, and why each thing is unchanged."""
    from buildkit_farm import buildx_version
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge, render

    try:
        desired = load_config(file).desired
        with buildx_version.checked(docker_config):  # read-only: buildx answers while the farm is read
            the_plan, _ = converge.plan(desired, docker_config=docker_config, reclaim=reclaim)
    except FarmError as err:
        if detailed_exitcode:  # 2 means changes: every error, bad input too, is 1
            err.exit_code = 1
        raise
    code = PLAN_CHANGES if detailed_exitcode and the_plan.changes else 0
    if as_json:
        envelope.emit("plan", the_plan.to_dict(), exit_code=code)
    else:
        typer.echo(render.plan_text(the_plan))
    if code:
        raise typer.Exit(code)


@app.command("up")
def up_cmd(
    file: FileOption = DEFAULT_FILE,
    docker_config: DockerConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `farm plan`).")] = False,
    lock_timeout: LockTimeoutOption = 660.0,
    wait_timeout: WaitTimeoutOption = 300.0,
    lock_ttl: LockTtlOption = 600.0,
    reclaim: ReclaimOption = False,
    as_json: JsonOption = False,
) -> None:
    """Make the contexts and the builder match the file, bootstrap every node and verify it (a node
    restarts only when no build runs on it, under a lock held on the node: docs/runners.md)."""
    import json

    from buildkit_farm import buildx_version
    from buildkit_farm.reconcile import converge, render

    buildx_version.start(docker_config)  # answers while the farm is read; required before anything changes

    def show(the_plan) -> None:
        buildx_version.require(docker_config)
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
        envelope.emit("up", data)
    elif result.status is not None:
        typer.echo("")
        typer.echo(render.status_text(result.status.builder, result.status.nodes, result.status.pools))
    for warning in result.status.warnings if result.status is not None else ():
        # A pool node that is down while its pools are served: reported, not an error.
        typer.echo(_colored(f"warning: {warning}", "yellow"), err=True)


STATUS_OK = ("running", "not observed")  # "not observed": a driver whose nodes farm cannot see
STATUS_NODE_DOWN = 3


@app.command("status")
def status_cmd(
    file: FileOption = DEFAULT_FILE, docker_config: DockerConfigOption = None, as_json: JsonOption = False
) -> None:
    """Each node: endpoint, status, BuildKit version, pinned and detected platforms (emulated marked)."""
    import json

    from buildkit_farm import buildx_version
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge, render

    desired = load_config(file).desired
    with buildx_version.checked(docker_config):  # read-only: buildx answers while the nodes are read
        st = converge.status(desired, docker_config=docker_config)
    buildx = buildx_version.require(docker_config)  # answered already: no second call
    down = [n.name for n in st.nodes if n.status not in STATUS_OK]
    if as_json:
        import json

        data = json.loads(render.status_json(st.builder, st.nodes, docker_config=st.docker_config, pools=st.pools))
        error = {
            "message": f"not running: {', '.join(down)}",
            "hint": "`farm up` starts them",
            "exit_code": STATUS_NODE_DOWN,
        }
        envelope.emit("status", {"buildx": buildx.text, **data}, error=error if down else None)
    else:
        typer.echo(f"buildx {buildx.text}")
        typer.echo(render.status_text(st.builder, st.nodes, st.pools))
    if down:
        raise typer.Exit(STATUS_NODE_DOWN)  # scripts: `farm status >/dev/null || farm up`


@app.command("down")
def down_cmd(
    file: FileOption = DEFAULT_FILE,
    docker_config: DockerConfigOption = None,
    keep_state: Annotated[bool, typer.Option("--keep-state", help="Keep the state volumes (the build cache).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed.")] = False,
    lock_timeout: LockTimeoutOption = 660.0,
    wait_timeout: WaitTimeoutOption = 300.0,
    lock_ttl: LockTtlOption = 600.0,
    force: Annotated[bool, typer.Option("--force", help="Do not wait for running builds: they fail.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove the farm's builder and the contexts it owns, and nothing else (after running builds finish)."""
    from buildkit_farm import buildx_version
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import converge, render

    desired = load_config(file).desired
    buildx_version.require(docker_config)
    the_plan = converge.down(
        desired,
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
        envelope.emit("down", the_plan.to_dict())


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
    docker_config: DockerConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check Dockerfiles for multi-arch readiness (the book's two rules). Exit 1 on errors."""
    import functools

    from buildkit_farm.lint import files, rules
    from buildkit_farm.lint import report as lint_report

    platforms = [p.strip() for value in platform or [] for p in value.split(",") if p.strip()]
    subjects = files.collect_subjects(paths or [], farm_file=file, platforms=platforms)
    inspect = None
    if registry:
        from buildkit_farm.registry.read import inspect_image

        inspect = functools.lru_cache(maxsize=None)(functools.partial(inspect_image, docker_config=docker_config))
    result = rules.lint_subjects(subjects, inspect=inspect)
    if as_json:
        errors = result.count("error")
        failed = {"message": f"{errors} error(s) found", "hint": "fix the findings", "exit_code": result.exit_code}
        envelope.emit("lint", result.to_dict(files.display_path), error=failed if result.exit_code else None)
    else:
        typer.echo(lint_report.render_text(result))
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
    command = envelope.json_command(sys.argv[1:])
    if command is not None:
        sys.exit(envelope.run(app, command, report=_report))
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

    # Messages quote the user's input: no credential and no control character reaches the terminal.
    text = f"error: {shown(err.message, keep=chr(10))}"
    typer.echo(_colored(text, "red"), err=True)
    if err.hint:
        typer.echo(f"hint: {shown(err.hint, keep=chr(10))}", err=True)
