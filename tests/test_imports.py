"""The nas modules import each other without a cycle, counting function-level (lazy) imports
too, and the spec layer stays at the bottom: torch-free and never importing upward."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nas"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines inside `if TYPE_CHECKING:` blocks (never executed, so not an import at run time)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """module -> the nas modules it imports anywhere in its source (top level or in functions)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        targets: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_among_nas_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_spec_layer_is_at_the_bottom():
    graph = import_graph()
    low = {"nas.errors", "nas.schema", "nas.yaml_io", "nas.registry", "nas.limits"}
    assert graph["nas.spec"] <= low | {"nas"}, graph["nas.spec"]
    for module in low:
        assert graph[module] <= low | {"nas"}, (module, graph[module])
    assert graph["nas.plan"] <= low | {"nas", "nas.spec"}, graph["nas.plan"]


def test_spec_imports_without_torch():
    # the package's own __init__ is bypassed (an empty `nas` package on the same path), so this
    # checks what the spec layer itself imports
    code = ("import sys, types; pkg = types.ModuleType('nas'); pkg.__path__ = [sys.argv[1]]; "
            "sys.modules['nas'] = pkg; import nas.spec, nas.plan, nas.registry, nas.limits; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code, str(PACKAGE)]).returncode == 0


def test_campaigns_run_jobs_not_the_run_command():
    """Searches, ablations and the campaign engine build a Job and call `nas.job.execute`;
    `nas.run` is the `nas run` command on top of it, imported by the CLI alone."""
    graph = import_graph()
    users = sorted(m for m, targets in graph.items() if "nas.run" in targets)
    assert users == ["nas.cli"], users
