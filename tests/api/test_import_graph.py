"""The core's import graph: no edge into the plugins, no cycle; plugins use only the public API.

The folder plugins/ installs as the package `course_assistant_plugins` (setup.py).

Every import counts, also those inside functions (they run too, just later).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_PACKAGES = {"plugins", "course_assistant_plugins"}  # the folder's name and its installed name


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (never imported at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", getattr(child.test, "attr", "")) == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) for every import statement in a file, relative ones resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names], node.lineno))
    return found


def core_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (ROOT / "assistant").rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, names, _ in imports_of(path):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in modules or candidate.split(".")[0] in PLUGIN_PACKAGES:
                    graph[name].add(candidate)
                    break
    return graph


def test_no_core_module_imports_a_plugin():
    edges = [(a, b) for a, targets in core_graph().items() for b in targets if b.split(".")[0] in PLUGIN_PACKAGES]
    assert edges == []


def test_no_core_module_names_a_builtin_plugin_module():
    """Not even through a string (importlib, entry points are in pyproject.toml only)."""
    import re

    builtin = re.compile(r"\b(course_assistant_)?plugins[./](rag|prompting|classifier|images)\b")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "assistant").rglob("*.py")
                 if builtin.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_no_core_module_reads_a_builtin_plugins_config_key():
    """The plugins' keys (rag.kb, images.quick_budget, ...) are theirs: the core reads what a plugin publishes
    (`Plugin.status`, its services), never their config. Every string in the core counts, docstrings too."""
    import re

    plugin_key = re.compile(r"\b(rag|vector_store|images|classifier|prompting)\.[a-z_]+")
    offenders = [f"{p.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}"
                 for p in (ROOT / "assistant").rglob("*.py")
                 for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str) and plugin_key.search(node.value)]
    assert offenders == []


def test_core_import_graph_has_no_cycle():
    graph = core_graph()
    # `assistant` (the public API) re-exports the core; core modules import the modules themselves.
    into_facade = sorted(a for a, targets in graph.items() if "assistant" in targets and a != "assistant")
    assert into_facade == [], "core modules must import assistant.<module>, not the public facade"
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt in graph and not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node)


def public_names() -> set[str]:
    import assistant

    return set(assistant.__all__)


def private_imports(folder: Path) -> list[str]:
    """`file:line module.name` for every import of a non-public `assistant` name under `folder`."""
    public = public_names()
    bad = []
    for path in sorted(folder.rglob("*.py")):
        for module, names, line in imports_of(path):
            if module.split(".")[0] != "assistant":
                continue
            where = f"{path.relative_to(ROOT)}:{line}"
            if module != "assistant":
                bad += [f"{where} {module}.{n}" for n in names] or [f"{where} {module}"]
            else:
                bad += [f"{where} assistant.{n}" for n in names if n not in public]
    return bad


def test_builtin_plugins_import_only_the_public_api():
    assert private_imports(ROOT / "plugins") == []


def test_nothing_imports_the_folder_name_plugins():
    """Only the installed name works outside a checkout (`plugins` is not installed)."""
    bad = []
    for folder in ("assistant", "plugins", "tests", "bench", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                bad += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] == "plugins"]
    assert bad == []


def test_every_name_the_builtins_use_is_public_or_mapped():
    """Phase 2 must be mechanical: each private import of the built-ins has a public name in docs/plugins.md."""
    mapping = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    unmapped = sorted({line.split(" ", 1)[1] for line in private_imports(ROOT / "plugins")
                       if f"`{line.split(' ', 1)[1]}`" not in mapping})
    assert unmapped == []


def test_the_public_api_is_importable_and_light():
    import subprocess
    import sys

    code = ("import assistant, sys; [getattr(assistant, n) for n in assistant.__all__ if n[0] != '_'];"
            "import assistant.cli;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'torch','tensorflow','transformers','sentence_transformers','chromadb','keras'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_lazy_names_are_listed_in_all():
    import assistant

    assert set(assistant._LAZY) <= set(assistant.__all__)
    assert len(assistant.__all__) == len(set(assistant.__all__))
