"""The action's JSON reading, run with farm's venv python (no jq on every runner).

`target-names`: the target names of `farm validate --json` (stdin), one a line.
`outputs REPORT METADATA`: the step's outputs for $GITHUB_OUTPUT, each in the delimiter
form with a random delimiter, so no value can add an output of its own.
"""

import json
import secrets
import sys
from pathlib import Path


def target_names(document: dict) -> list[str]:
    """The targets of a validate document (the JSON envelope's result, or the bare summary)."""
    summary = document.get("result", document) if isinstance(document.get("result"), dict) else document
    return [t["name"] for t in summary.get("targets", [])]


def _read(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def digests(report: dict, metadata: dict) -> dict[str, str]:
    """Target -> index digest: the report's, or the metadata's where the report has none."""
    found = {t["target"]: t["digest"] for t in report.get("targets", []) if t.get("digest")}
    if "containerimage.digest" in metadata:  # one target: the flat form of `buildx build`
        names = [t["target"] for t in report.get("targets", [])]
        per_target = {names[0]: metadata} if len(names) == 1 else {}
    else:  # `bake`'s form: one entry per target
        per_target = {k: v for k, v in metadata.items() if isinstance(v, dict)}
    for name, entry in per_target.items():
        if isinstance(entry.get("containerimage.digest"), str):
            found.setdefault(name, entry["containerimage.digest"])
    return found


def output(name: str, value: str) -> str:
    """NAME<<DELIMITER, the value, DELIMITER: a delimiter the value does not hold."""
    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    while delimiter in value:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def outputs(report_path: str, metadata_path: str) -> str:
    report, metadata = _read(report_path), _read(metadata_path)
    found = digests(report, metadata)
    single = next(iter(found.values())) if len(found) == 1 and len(report.get("targets", [])) <= 1 else ""
    return "".join(
        [
            output("report", report_path),
            output("metadata", json.dumps(metadata) if metadata else ""),
            output("digests", json.dumps(found)),
            output("digest", single),
        ]
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["target-names"]:
        sys.stdout.write("".join(f"{n}\n" for n in target_names(json.load(sys.stdin))))
        return 0
    if argv[:1] == ["outputs"] and len(argv) == 3:
        sys.stdout.write(outputs(argv[1], argv[2]))
        return 0
    sys.stderr.write("usage: outputs.py target-names < validate.json | outputs REPORT METADATA\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
