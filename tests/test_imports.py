"""How the modules import each other, checked over the whole tree: the torch-free core loads no torch, no module
reaches into another's private names, and no two modules import each other (directly or round a loop).

The import graph is read with ``ast`` from the module-level imports (those that run when a module is first
imported: inside ``if``/``try``/``with`` too, but not in functions, classes or ``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("slmtui", "trainer")

PRIVATE_CHECK_SKIPS: tuple[str, ...] = ()
"""Importers the private-name check leaves out: none."""


def module_files() -> dict[str, Path]:
    """Every module of ours by dotted name (a package by its name, for its __init__.py)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The dotted module an ``ImportFrom`` names, relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run on importing the module."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not is_type_checking(node):
                yield from module_level(node.body)
            yield from module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from module_level(block)
        elif isinstance(node, ast.With):
            yield from module_level(node.body)


def every_import(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def skipped(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def parse(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))


def test_the_core_and_the_trainers_config_import_no_torch() -> None:
    """The app's fast start and the trainer's settings rest on these never loading torch (fresh interpreter)."""
    code = "import sys, slmtui.core, trainer.config; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    every_core = [m for m in MODULES if m.startswith("slmtui.core")]
    code = f"import sys, {', '.join(every_core)}; bad = sorted(m for m in ('torch', 'tiktoken', 'textual') " \
           "if m in sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_app_opens_its_screens_before_torch_is_imported() -> None:
    """The app, its screens and its services load no torch: the writer is on screen in about half a second, and
    torch comes with the model, in the loading worker (SlmApp.load_model), while the user starts to type."""
    code = "import sys, slmtui.tui.app, slmtui.cli; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


MOUNT_WITHOUT_TORCH = """
import asyncio, sys
from slmtui.tui.app import SlmApp
SlmApp.load_model = lambda self, name: None  # the one place torch may come in: the model's loading worker
async def main():
    app = SlmApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s", "ctrl+g", "f7", "escape", "ctrl+o", "escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "WriterScreen", app.screen
asyncio.run(main())
assert "torch" not in sys.modules, "torch was imported"
"""


def test_the_writer_mounts_and_its_panels_open_without_torch(tmp_path: Path) -> None:
    """Not only the imports: the app mounted, the writer drawn, its panels, lorebook and stories opened, all
    without torch; so the screen is the user's before the model is (torch comes with the loading worker)."""
    env = {**os.environ, "SLMTUI_HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", MOUNT_WITHOUT_TORCH], check=True, cwd=ROOT, env=env, timeout=120)


def test_the_core_imports_nothing_of_ours_but_the_core() -> None:
    """``core -> (nothing of ours)``: the core is at the bottom of every arrow (ARCHITECTURE.md)."""
    wrong = [f"{m} imports {name}" for m in MODULES if m.startswith("slmtui.core")
             for node in every_import(parse(m))
             for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [absolute(m, node)])
             if ours(name) and not name.startswith("slmtui.core")]
    assert wrong == []


def private_imports(module: str, tree: ast.Module) -> list[str]:
    """The private names (``_name``, not ``__dunder__``) of other modules of ours that ``module`` imports."""
    wrong = []
    for node in every_import(tree):
        if isinstance(node, ast.ImportFrom):
            source = absolute(module, node)
            if not ours(source) or source == module:
                continue
            names = [f"{source}.{a.name}" for a in node.names]
        else:
            names = [a.name for a in node.names if ours(a.name)]
        wrong += [f"{module} imports {n}" for n in names
                  if any(part.startswith("_") and not part.startswith("__") for part in n.split("."))]
    return wrong


def test_no_module_imports_a_private_name_of_another() -> None:
    """A ``_name`` is its module's own; another module that needs it needs a public name."""
    assert [w for m in MODULES if not skipped(m, PRIVATE_CHECK_SKIPS) for w in private_imports(m, parse(m))] == []


def test_the_private_check_sees_every_form() -> None:
    tree = ast.parse("from slmtui.core.model_folder import _parse_model_info, read_model_info\n"
                     "from . import _atomic\nimport slmtui.core._hidden\nfrom slmtui import __version__\n"
                     "from os import _exit\ndef f():\n    from trainer.config import _DURATION\n")
    assert private_imports("slmtui.core.model_target", tree) == [
        "slmtui.core.model_target imports slmtui.core.model_folder._parse_model_info",
        "slmtui.core.model_target imports slmtui.core._atomic",
        "slmtui.core.model_target imports slmtui.core._hidden",
        "slmtui.core.model_target imports trainer.config._DURATION",
    ]


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours its module-level imports load (a package's __init__ counts as a module)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for node in module_level(parse(module).body):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                source = absolute(module, node)
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
            for target in targets:
                if not ours(target):
                    continue
                parts = target.split(".")
                # Importing a.b.c runs a and a.b first; a module's own packages are loaded before it, so they are
                # no edge of its own (else every package whose __init__ imports its modules would be a loop).
                for i in range(1, len(parts) + 1):
                    name = ".".join(parts[:i])
                    own = module == name or module.startswith(name + ".")
                    if name in MODULES and (not own or i == len(parts)) and name != module:
                        graph[module].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_loops() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("graph, loops", [
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"a", "b"}}, []),
])
def test_the_loop_finder_finds_loops(graph: dict[str, set[str]], loops: list[list[str]]) -> None:
    assert cycles(graph) == loops


def test_the_graph_sees_module_level_imports_only() -> None:
    graph = import_graph()
    assert "slmtui.core.errors" in graph["slmtui.core.paths"]  # from slmtui.core.errors import SlmError
    assert "slmtui.core.paths" in graph["slmtui.engine.tokenizer"]  # from slmtui.core.paths import ...
    assert "slmtui.engine.model_io" not in graph["slmtui.cli"]  # imported inside a function, on demand
    assert "slmtui.core" in graph["trainer.tokenizers"]  # from slmtui.core import paths: the package, then paths
    assert "slmtui.core.paths" in graph["trainer.tokenizers"]
