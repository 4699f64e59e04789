"""The package stays one a newcomer can change: small modules, and no import cycle among them.

Both checks read the source only (no module is imported): the line count of
every ``rr_utils`` module, and the graph of its ``import`` statements, those at
module level and those inside functions alike (a deferred import hides a cycle
from the interpreter, not from a reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rr_utils"
MAX_LINES = 500


def modules(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of ``package`` (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules(PACKAGE)


def _imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that the import statements of ``name`` name.

    ``import a.b`` names ``a.b``; ``from a import b`` names ``a.b`` when ``b`` is a
    module, else ``a`` (an attribute of ``a``'s ``__init__``). Relative imports are
    resolved against ``name``'s package.
    """
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != name}


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``known`` (``modules``) it imports."""
    return {name: _imported(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), or of one that imports itself."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_500_lines(name):
    path = MODULES[name]
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)}: {n} lines; split it by concern (<= {MAX_LINES})"


def test_no_import_cycle_among_the_modules():
    found = cycles(import_graph(MODULES))
    assert not found, "import cycles among rr_utils modules: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_the_cycle_claims_used_to_have():
    # claims/__init__.py defined constants, then imported claims.layers, which imported the package back
    graph = {"rr_utils.claims": {"rr_utils.claims.layers"}, "rr_utils.claims.layers": {"rr_utils.claims"},
             "rr_utils.bound": set(), "rr_utils.claims.rules": {"rr_utils.bound"}}
    assert cycles(graph) == [["rr_utils.claims", "rr_utils.claims.layers"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_reads_every_kind_of_import(tmp_path):
    pkg = tmp_path / "rr_utils"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import rr_utils.b\nfrom rr_utils.sub import c as C\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import x\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import a\n")
    (pkg / "sub" / "c.py").write_text("from rr_utils.sub import VALUE\nimport numpy\n")
    graph = import_graph(modules(pkg))
    assert graph == {"rr_utils": set(), "rr_utils.a": {"rr_utils.b", "rr_utils.sub.c"},
                     "rr_utils.b": {"rr_utils.sub.c"}, "rr_utils.sub": {"rr_utils.a"},
                     "rr_utils.sub.c": {"rr_utils.sub"}}
    assert cycles(graph) == [["rr_utils.a", "rr_utils.b", "rr_utils.sub", "rr_utils.sub.c"]]
