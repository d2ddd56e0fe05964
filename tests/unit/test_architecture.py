"""The house rules, checked on the source: packages by stage, one Docker door, no import circle.

These read the package's files (no import of it): the rules are about where code lives.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "buildkit_farm"
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
    for path in sorted(PACKAGE.rglob("*.py"))
}
MAX_LINES = 600


def imports_of(name: str, path: Path) -> set[str]:
    """Every buildkit_farm module `name` imports: at the top, in functions, for type checking."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in MODULES and m != name}


def test_no_import_circle():
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    # A package's __init__ that imports nothing is no link in a circle.
    circles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in trail:
                circles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif len(trail) < 12:
                visit(nxt, [*trail, nxt])

    for start in graph:
        visit(start, [start])
    assert not circles, "import circles:\n" + "\n".join(sorted(set(circles)))


def test_no_module_over_the_size_limit():
    big = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_no_utils_helpers_or_manager_modules():
    assert not [n for n in MODULES if re.search(r"(^|\.)(utils?|helpers?|manager|misc|common)$", n)]


def test_only_the_door_makes_a_docker_client_or_argv():
    door = MODULES["buildkit_farm.docker"]
    makers = re.compile(r"DockerClient\(|shutil\.which\(\"docker\"\)|\[\"docker\",")
    outside = [name for name, path in MODULES.items() if path != door and makers.search(path.read_text())]
    assert not outside, f"a Docker client or argv made outside buildkit_farm.docker: {outside}"


def test_planning_and_the_file_model_never_import_python_on_whales():
    pure = [n for n in MODULES if n.startswith(("buildkit_farm.farmfile", "buildkit_farm.lint"))]
    pure += ["buildkit_farm.reconcile.plan", "buildkit_farm.reconcile.status", "buildkit_farm.reconcile.render"]
    for name in pure:
        text = MODULES[name].read_text()
        assert "python_on_whales" not in text.replace("# lazy", ""), f"{name} imports python_on_whales"
