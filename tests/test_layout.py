"""The layout's import rules, checked by parsing every module's imports (docs/architecture.md).

- `reports` and `benchmarks.core` never import torch (nor anything that does);
- `datasets` and `models3d` take only `benchmarks.core` from `benchmarks`;
- nothing below a command imports a command;
- imports sit at the top of a module, except the few listed here with their reason.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmarks", "datasets", "models3d", "reports")
COMMANDS = {"benchmarks.run", "benchmarks.leaderboard", "benchmarks.speed", "benchmarks.tune", "reports.build",
            "reports.validation", "datasets.export"}
HEAVY = {"torch", "torchvision", "monai", "libauc", "cooper", "nibabel"}
# Imports inside a function, each with the reason it cannot be at the top of its module.
LOCAL_IMPORTS = {
    ("benchmarks.sweep.executors", "importlib"): "ray and submitit are optional extras, imported by name on use",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


def imports(name: str) -> list[tuple[str, bool]]:
    """(imported module, whether the import is at module level) for every import in module `name`."""
    tree = ast.parse(MODULES[name].read_text())
    in_functions = {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for inner in ast.walk(node)}
    top = {id(node) for node in ast.walk(tree)} - in_functions  # module level, `if`/`try` blocks included
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, id(node) in top))
            found += [(f"{node.module}.{alias.name}", id(node) in top) for alias in node.names
                      if f"{node.module}.{alias.name}" in MODULES]
    return found


def project_imports(name: str) -> set[str]:
    return {module for module, _ in imports(name) if module in MODULES}


def closure(name: str) -> set[str]:
    """Every project module that importing `name` imports (its package `__init__`s included)."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]
        todo += project_imports(current)
    return seen


def heavy_imports(name: str) -> set[str]:
    return {module for module, _ in imports(name) if module.split(".")[0] in HEAVY}


def test_the_layout_is_found():
    assert {"benchmarks.core.records", "benchmarks.engine.pipeline", "benchmarks.sweep.plan", "reports.build",
            "datasets.registry", "models3d"} <= MODULES.keys()


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith(("reports", "benchmarks.core"))])
def test_reports_and_core_never_import_torch(name):
    reached = closure(name)
    assert all(module.startswith(("reports", "benchmarks.core")) or module == "benchmarks" for module in reached), \
        sorted(reached)
    assert not {module: heavy_imports(module) for module in reached if heavy_imports(module)}


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith(("datasets", "models3d"))])
def test_datasets_and_models_take_only_core_from_benchmarks(name):
    taken = {module for module in project_imports(name) if module.startswith("benchmarks")}
    assert all(module.startswith("benchmarks.core") for module in taken), taken


@pytest.mark.parametrize("name", [m for m in MODULES if m not in COMMANDS])
def test_nothing_below_a_command_imports_a_command(name):
    assert not project_imports(name) & COMMANDS


@pytest.mark.parametrize("name", list(MODULES))
def test_imports_are_at_the_top(name):
    local = {module for module, at_top in imports(name) if not at_top} - {
        module for (owner, module) in LOCAL_IMPORTS if owner == name}
    assert not local, f"{name} imports {sorted(local)} inside a function: move them to the top"


def test_a_rule_violation_is_caught(tmp_path, monkeypatch):
    """The checker itself: a core module importing torch inside a function is flagged twice."""
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    import torch\n")
    monkeypatch.setitem(MODULES, "benchmarks.core.fake", fake)
    assert heavy_imports("benchmarks.core.fake") == {"torch"}
    assert [module for module, at_top in imports("benchmarks.core.fake") if not at_top] == ["torch"]
