"""The shape of the code, checked from its own ``import`` statements (function-level imports included).

Layers, top to bottom: ``cli`` -> ``sdk`` -> {``training``, ``runtime``, ``routing``, ``packages``, ``scoring``}
-> {``prompts``, ``manifest``, ``models``} -> ``core``. A module imports its own package or a lower layer, never
a package beside it or above it; ``cli`` imports only the SDK and core's error, path and progress helpers;
and no two modules import each other, directly or through others. Imports under ``if TYPE_CHECKING:`` are
annotations only (never executed) and do not count; function-level imports do.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "expert_cli"
LAYERS = {
    "cli": 4, "sdk": 3,
    "training": 2, "runtime": 2, "routing": 2, "packages": 2, "scoring": 2,
    "prompts": 1, "manifest": 1, "models": 1,
    "core": 0,
}
CLI_MAY_IMPORT = ("expert_cli.sdk", "expert_cli.core.errors", "expert_cli.core.paths", "expert_cli.core.progress")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, anywhere in its body, resolved to module names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in executed_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("expert_cli") and target != name:
                found.add(target)
    return found


def executed_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def feature(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_feature_package_has_a_layer():
    packages = {path.name for path in PACKAGE_ROOT.iterdir() if (path / "__init__.py").is_file()}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"


def test_nothing_imports_a_package_beside_it_or_above_it():
    wrong = []
    for module, targets in import_graph().items():
        here = feature(module)
        for target in targets:
            there = feature(target)
            if here is None or there is None or here == there:
                continue
            if LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports across or up the layers:\n" + "\n".join(sorted(wrong))


def test_the_cli_imports_only_the_sdk_and_core_helpers():
    wrong = [f"{module} -> {target}" for module, targets in import_graph().items() if feature(module) == "cli"
             for target in targets if feature(target) != "cli" and not target.startswith(CLI_MAY_IMPORT)]
    assert not wrong, "the CLI reaches below the SDK:\n" + "\n".join(sorted(wrong))


def test_the_top_level_package_imports_only_the_sdk_and_errors():
    graph = import_graph()
    allowed = ("expert_cli.sdk", "expert_cli.core.errors", "expert_cli.cli")
    wrong = [target for module in ("expert_cli", "expert_cli.__main__") for target in graph[module]
             if not target.startswith(allowed)]
    assert not wrong


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state[target] == 1:
                return stack[stack.index(target):] + [target]
            if state[target] == 0 and (cycle := visit(target)):
                return cycle
        state[node], _ = 2, stack.pop()
        return None

    for node in sorted(graph):
        if state[node] == 0 and (cycle := visit(node)):
            return cycle
    return None


def test_there_are_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_type_checking_imports_do_not_count_but_function_level_ones_do():
    code = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n"
            "def f():\n    import c\n")
    names = {alias.name for node in executed_nodes(ast.parse(code)) if isinstance(node, ast.Import)
             for alias in node.names}
    assert names == {"b", "c"}


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

