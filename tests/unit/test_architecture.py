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
MAX_LINES = 500
MAX_COMPLEXITY = 20  # radon's cyclomatic complexity (it counts boolean operators; ruff's mccabe counts fewer)


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


def lines_of(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_over_the_size_limit():
    big = {name: n for name, path in MODULES.items() if (n := lines_of(path)) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def complexities() -> dict[str, int]:
    """Every function's, method's and closure's cyclomatic complexity by radon, as `path:name`."""
    from radon.complexity import cc_visit

    found = {}

    def visit(rel: str, blocks) -> None:
        for block in blocks:
            if hasattr(block, "methods"):  # a class
                visit(rel, block.methods)
                continue
            found[f"{rel}:{block.fullname}"] = block.complexity
            visit(rel, block.closures)

    for path in MODULES.values():
        visit(path.relative_to(PACKAGE.parent).as_posix(), cc_visit(path.read_text(encoding="utf-8")))
    return found


def test_no_function_above_the_complexity_limit():
    over = {name: cc for name, cc in complexities().items() if cc > MAX_COMPLEXITY}
    assert not over, f"functions above cyclomatic complexity {MAX_COMPLEXITY} (radon cc): split them: {over}"


def test_the_complexity_gate_counts_like_radon_cc(tmp_path):
    from radon.complexity import cc_visit

    (block,) = cc_visit("def f(a, b):\n    if a and b or a:\n        return 1\n    return 2\n")
    assert block.complexity == 4  # 1 + the if + two boolean operators
    assert "buildkit_farm/docker.py:mask" in complexities()


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


DOOR = "buildkit_farm.docker"
PROCESS_IMPORTS = ("subprocess", "python_on_whales", "pty", "multiprocessing")
PROCESS_CALLS = re.compile(r"^(system|popen|exec\w*|spawn\w*|fork\w*|posix_spawn\w*)$")


def process_starters(path: Path) -> set[str]:
    """What in `path` can start a process: imports of subprocess or python_on_whales (at the
    top, in functions, or for type checking alike) and calls such as os.system or os.execv."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            names = [f"os.{node.attr}"] if PROCESS_CALLS.match(node.attr) else []
        found |= {n for n in names if n.startswith("os.") or n.split(".")[0] in PROCESS_IMPORTS}
    return found


def test_only_the_door_starts_processes():
    outside = {
        name: sorted(found) for name, path in MODULES.items() if name != DOOR and (found := process_starters(path))
    }
    assert not outside, f"processes started outside {DOOR} (go through its verbs): {outside}"


def test_the_door_check_sees_every_way_in(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nimport os\nif TYPE_CHECKING:\n    from python_on_whales import DockerClient\n"
        "def f():\n    import subprocess\n    from python_on_whales.utils import run\n    os.execvp('x', ['x'])\n"
    )
    assert process_starters(sample) == {
        "python_on_whales",
        "python_on_whales.DockerClient",
        "subprocess",
        "python_on_whales.utils",
        "python_on_whales.utils.run",
        "os.execvp",
    }
