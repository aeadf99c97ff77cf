"""The library's layers, read from the source (AST): no import cycle between harness's
subpackages and modules, and pytest imported by the plugin only."""
import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "harness"


def _unit(path: Path) -> str:
    """A subpackage (harness/logs/*.py -> 'logs') or a top-level module ('models')."""
    rel = path.relative_to(HARNESS).with_suffix("")
    return rel.parts[0]


def _runtime_nodes(node: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
            continue
        yield from _runtime_nodes(child)


def _imports(path: Path) -> set:
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "harness" and len(parts) > 1:
                found.add(parts[1])
    return found


def _graph() -> dict:
    graph: dict = {}
    for path in HARNESS.rglob("*.py"):
        unit = _unit(path)
        graph.setdefault(unit, set()).update(i for i in _imports(path) if i != unit)
    return graph


def _cycle(graph: dict):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_subpackages_and_modules():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_the_detector_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_plugin_imports_pytest():
    importers = sorted(str(p.relative_to(HARNESS)) for p in HARNESS.rglob("*.py")
                       if "pytest" in {n.split(".")[0] for n in _all_imports(p)})
    assert importers == ["plugin.py"]


def _all_imports(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names
