"""The layering rules of the repository (README, Development: how the layers fit), read
from the source with `ast`: nothing is imported or run, so these take milliseconds.

- no import cycles among the modules of `warp_phys` and `systems`;
- `systems` (the data layer) imports nothing of `warp_phys`;
- only the modules above training (the CLI, the demo, the run figures, the public API)
  import `warp_phys.training`; the model core never does;
- every module is under 300 lines and no function body over 80;
- no formatter escapes (`# fmt: skip` / `# fmt: off`).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("warp_phys", "systems")
# The modules allowed to import the training layer (besides training itself).
ABOVE_TRAINING = {
    "warp_phys",  # the public API re-exports train, Run, ...
    "warp_phys.cli",
    "warp_phys.demo",
    "warp_phys._plot_command",
    "warp_phys._run_commands",
    "warp_phys._train_flags",
    "warp_phys.plotting._run",
    # the tasks beyond forecasting reuse the optimiser, checkpoints and protocols
    "warp_phys.tasks._fit",
    "warp_phys.tasks._objectives",
    "warp_phys.tasks._tasks",
}
MAX_MODULE_LINES = 300
MAX_FUNCTION_BODY = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in FILES.items()}


def _imports(name: str) -> set[str]:
    """The modules of ours that `name` imports (anywhere in it), each resolved to the
    longest known module name; a module's own ancestor packages are left out (Python
    imports them first whatever the module does)."""
    package = name if FILES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            if node.level:
                stem = f"{base}.{node.module}" if node.module else base
            else:
                stem = node.module
            targets = [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in FILES:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


GRAPH = {name: _imports(name) for name in FILES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a list of modules, or None (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node):
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            if found := visit(target):
                return found
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if found := visit(start):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_import_resolver_sees_relative_and_package_imports():
    assert "warp_phys._recurrence" in GRAPH["warp_phys._transition"]
    assert "warp_phys.decoders" in GRAPH["warp_phys._model"]  # a package counts as a node
    assert "warp_phys.training.run" in GRAPH["warp_phys.plotting._run"]


def test_no_import_cycles():
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH))


def test_systems_imports_nothing_of_warp_phys():
    wrong = {m: sorted(t for t in GRAPH[m] if t.startswith("warp_phys")) for m in GRAPH}
    assert not {m: t for m, t in wrong.items() if m.startswith("systems") and t}


def test_only_the_layers_above_training_import_it():
    importers = {
        m
        for m, targets in GRAPH.items()
        if any(t == "warp_phys.training" or t.startswith("warp_phys.training.") for t in targets)
    }
    outside = {m for m in importers if not m.startswith("warp_phys.training")}
    assert outside <= ABOVE_TRAINING, sorted(outside - ABOVE_TRAINING)


@pytest.mark.parametrize("name", sorted(FILES))
def test_module_size_and_no_formatter_escapes(name):
    text = FILES[name].read_text()
    lines = len(text.splitlines())
    assert lines < MAX_MODULE_LINES, f"{name}: {lines} lines, split it by concept"
    assert "fmt: skip" not in text and "fmt: off" not in text
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            length = node.end_lineno - body[0].lineno + 1 if body else 0
            assert length <= MAX_FUNCTION_BODY, f"{name}.{node.name}: {length} lines"
