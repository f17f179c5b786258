"""qwen_nb's modules import each other without cycles: shared types live below their users.

Every `import` counts, wherever it is written (module level, inside a function, under
`TYPE_CHECKING`), because a cycle hidden in a function is still a cycle in the design.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(importlib.util.find_spec("qwen_nb").origin).parent  # what tests import


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The qwen_nb modules that `name` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from . import api` imports the module qwen_nb.api, not the package
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported_modules(name, path, set(found)) for name, path in found.items()}


def test_the_graph_sees_function_level_and_type_checking_imports():
    graph = import_graph()
    assert "qwen_nb.magics" in graph["qwen_nb"]  # inside load_ipython_extension
    assert "qwen_nb.api" in graph["qwen_nb.panel"]  # `from . import api`
    assert "qwen_nb.render" in graph["qwen_nb.frontend.live"]  # `from ..render import`
    assert "qwen_nb._types" in graph["qwen_nb._errors"]  # under TYPE_CHECKING


def test_the_cycle_finder_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_qwen_nb_has_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_response_shows_its_tabs_though_its_module_never_imports_the_renderer():
    """_types has no import of render/; the package plugs the renderer in on import."""
    code = (
        "import sys\n"
        "from qwen_nb._types import QwenResponse\n"
        "assert 'qwen_nb.render' not in sys.modules\n"
        "from IPython.core.formatters import DisplayFormatter\n"
        "data, _ = DisplayFormatter().format(QwenResponse(answer='**bold**', thinking='hm'))\n"
        "assert '<strong>bold</strong>' in data['text/html'], data\n"
        "assert 'Thinking' in data['text/html']\n"
        "print(data['text/plain'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "bold" in result.stdout
