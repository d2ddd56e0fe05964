"""The one shape of every `--json` document farm prints, on success and on failure alike.

    {"ok": bool, "command": "plan", "exit_code": 0, "result": {...} | null,
     "error": null | {"message": str, "hint": str | null, "exit_code": int, ...}}

`ok` is false exactly when `error` is set; `exit_code` is the process's. Every string in the
document is redacted as stderr is (errors.redacted): a document is often kept as an artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from buildkit_farm.errors import ConfigError, FarmError, redacted

# The commands that printed their document this run: `run` prints one only when none did.
PRINTED: list[str] = []


def error_dict(err: FarmError) -> dict[str, Any]:
    """An error as the document's `error`: message, hint, exit code (and a bad file's issues)."""
    data: dict[str, Any] = {"message": err.message, "hint": err.hint, "exit_code": err.exit_code}
    if isinstance(err, ConfigError):
        data["file"] = err.file
        data["issues"] = [{"path": i.path, "message": i.message, "hint": i.hint, "line": i.line} for i in err.issues]
    return data


def document(
    command: str,
    result: Any = None,
    *,
    error: FarmError | dict[str, Any] | None = None,
    exit_code: int | None = None,
) -> str:
    """The JSON text of one document; `exit_code` defaults to the error's, else 0."""
    import json  # here: `farm --help` and every run without --json never need it

    failure = error_dict(error) if isinstance(error, FarmError) else error
    code = exit_code if exit_code is not None else (failure["exit_code"] if failure else 0)
    data = {"ok": failure is None, "command": command, "exit_code": code, "result": result, "error": failure}
    return json.dumps(redacted(data), indent=2)


def emit(
    command: str, result: Any = None, *, error: FarmError | dict | None = None, exit_code: int | None = None
) -> None:
    """Print this run's one document on stdout."""
    import typer

    typer.echo(document(command, result, error=error, exit_code=exit_code))
    PRINTED.append(command)


def json_command(args: list[str]) -> str | None:
    """The command's name when `--json` is asked (before any `--`), else None."""
    head = args[: args.index("--")] if "--" in args else args
    if "--json" not in head:
        return None
    return next((a for a in head if not a.startswith("-")), "farm")


def run(app: Callable[..., Any], command: str, *, report: Callable[[FarmError], None]) -> int:
    """Run the CLI under --json: whatever happens, stdout gets one document (the command's,
    or its error's); the error is also reported on stderr, for people."""
    import typer

    failure: FarmError | dict
    try:
        code = app(prog_name="farm", standalone_mode=False)
    except FarmError as err:
        report(err)
        failure, code = err, err.exit_code
    except typer.TyperException as err:  # click's usage errors: before any command ran
        code = getattr(err, "exit_code", 2)
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        typer.echo(f"error: {message}", err=True)
        failure = {"message": message, "hint": f"farm {command} --help", "exit_code": code}
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("Interrupted.", err=True)
        failure, code = {"message": "interrupted", "hint": None, "exit_code": 130}, 130
    else:
        return code if isinstance(code, int) else 0
    if not PRINTED:
        emit(command, error=failure, exit_code=code)
    return code
