"""The package's layout: imports run one way, from the CLI down to the spec, and nothing climbs back up."""

import ast
from pathlib import Path

import hpsearch

# Bottom to top: a package may import itself and the packages before it, never one after it.
LAYERS = (
    "errors",
    "spec",
    "data",
    "tasks",
    "search",
    "results",
    "training",
    "orchestration",
    "cli_args",
    "cli",
    "__main__",
)
ROOT = Path(hpsearch.__file__).parent


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _runtime_imports(tree: ast.Module):
    """Every `hpsearch.X` a module imports when it runs (imports under `if TYPE_CHECKING:` are for types only)."""
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hpsearch."):
            yield node.lineno, node.module.split(".")[1]
        elif isinstance(node, ast.ImportFrom) and node.module == "hpsearch":
            for alias in node.names:
                if alias.name != "__version__":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hpsearch."):
                    yield node.lineno, alias.name.split(".")[1]


def test_every_module_belongs_to_a_layer():
    layers = {_layer(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert layers <= set(LAYERS), f"modules outside the layers: {sorted(layers - set(LAYERS))}"


def test_imports_run_down_the_layers():
    climbing = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _layer(path)
        if own == "__init__":
            continue
        for line, imported in _runtime_imports(ast.parse(path.read_text())):
            if LAYERS.index(imported) > LAYERS.index(own):
                climbing.append(f"{path.relative_to(ROOT.parent)}:{line} ({own}) imports {imported}")
    assert not climbing, "imports that climb back up:\n" + "\n".join(climbing)


def test_no_module_is_over_300_lines():
    long = {
        str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long, f"modules over 300 lines (split them by what they do): {long}"
