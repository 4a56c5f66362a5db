"""The import graph of ``mmlib``: no cycle, counting imports inside functions (lazy imports) too.

Each module of ``mmlib/`` is parsed (``ast``, nothing is imported); ``from A import B`` is an arrow to
``A.B`` when that is a module, else to ``A``, and importing ``a.b.c`` also runs the packages ``a.b``'s
``__init__``, so it is an arrow to those too (a package's own children registering themselves are not
a cycle, and every module runs the root ``mmlib/__init__``, which is left out). A cycle means one of
its modules imports one above it: the test names the modules of every cycle and the arrows between them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mmlib"


def module_files() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The mmlib modules ``tree`` imports anywhere (module level or inside a function)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {name for name in names if name.split(".")[0] == "mmlib"}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in imported(ast.parse(path.read_text(), str(path)), modules):
            parts = target.split(".")
            targets |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}  # the packages it runs on the way
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_of_mmlib_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "mmlib.train" in graph["mmlib.cli"]
    report = [f"{', '.join(c)}: " + "; ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a] & set(c)))
              for c in cycles(graph)]
    assert not report, "import cycles:\n" + "\n".join(report)


def test_the_cycle_finder_sees_lazy_imports_and_package_inits():
    modules = {"mmlib.a": Path(), "mmlib.b": Path(), "mmlib.pkg": Path(), "mmlib.pkg.c": Path()}
    lazy = ast.parse("def f():\n    from mmlib.b import thing\n")
    assert imported(lazy, modules) == {"mmlib.b"}
    assert imported(ast.parse("from mmlib.pkg import c\nimport numpy"), modules) == {"mmlib.pkg.c"}
    graph = {"mmlib.a": {"mmlib.b"}, "mmlib.b": {"mmlib.pkg"}, "mmlib.pkg": {"mmlib.pkg.c"}, "mmlib.pkg.c": {"mmlib.a"}}
    assert cycles(graph) == [["mmlib.a", "mmlib.b", "mmlib.pkg", "mmlib.pkg.c"]]
    assert cycles({**graph, "mmlib.pkg.c": set()}) == []
