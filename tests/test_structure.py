"""The package's shape (issue 19): no import cycle, no reading of another module's private names.

Both checks read the sources with :mod:`ast`, imports inside functions included
(an import moved into a function hides a cycle from Python, not from this test).

"Private" means a name with one leading underscore: ``from .model import _mean``,
``model._elementwise`` or ``net._params`` read from a module that does not define
that name.  A module may use its own private names and the public names of a
private module (``_core.train_epoch``: the compiled core is an interface).

``KNOWN_CYCLES`` and ``KNOWN_PRIVATE`` list what main carried when these checks
were written (issue 19's review counted three cycles and 36 private accesses).
They may only shrink: a new cycle or a new private access fails, and so does an
entry that no longer occurs (delete it, so that it cannot come back unseen).
"""
import ast
import collections
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cbp"
if not PACKAGE.is_dir():
    pytest.skip(f"the sources are not at {PACKAGE} (tests run outside a checkout)",
                allow_module_level=True)

KNOWN_CYCLES: set = set()

KNOWN_PRIVATE = {
    ("mnist_loader", "datasets._default_cache_dir"),
}

# Names of the standard library's that are private by spelling only.
STDLIB_PRIVATE = {"sys._getframe"}


def _modules():
    return {p.stem: ast.parse(p.read_text(encoding="utf-8"), str(p))
            for p in sorted(PACKAGE.glob("*.py"))}


MODULES = _modules()


def _cbp_imports(node):
    """(module, name) pairs that one import statement takes from cbp's own modules."""
    if isinstance(node, ast.Import):
        return [(a.name.split(".")[1], None) for a in node.names
                if a.name.startswith("cbp.") and a.name.split(".")[1] in MODULES]
    if node.level > 1:
        return []
    if node.level == 1:
        base = node.module or ""
    elif node.module == "cbp" or (node.module or "").startswith("cbp."):
        base = node.module[4:]
    else:
        return []
    if not base:    # from . import x / from cbp import x
        return [(a.name, None) for a in node.names if a.name in MODULES]
    top = base.split(".")[0]
    return [(top, a.name) for a in node.names] if top in MODULES else []


def _graph_and_private():
    graph = collections.defaultdict(set)
    private = collections.defaultdict(list)
    for name, tree in MODULES.items():
        own = set()
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(n.name)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                own.add(n.attr)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                own.add(n.id)
        for n in ast.walk(tree):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                for other, imported in _cbp_imports(n):
                    if other == name:
                        continue
                    graph[name].add(other)
                    if imported and imported.startswith("_") and not imported.startswith("__"):
                        private[(name, f"from {other} import {imported}")].append(n.lineno)
            elif (isinstance(n, ast.Attribute) and n.attr.startswith("_")
                  and not n.attr.startswith("__") and n.attr not in own):
                value = n.value
                if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                    continue
                if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                        and value.func.id == "super"):
                    continue
                text = ast.unparse(n)
                if text not in STDLIB_PRIVATE:
                    private[(name, text)].append(n.lineno)
    return graph, private


GRAPH, PRIVATE = _graph_and_private()


def _cycles(graph):
    """Pairs of modules that reach each other through imports."""
    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            x = todo.pop()
            if x == goal:
                return True
            if x not in seen:
                seen.add(x)
                todo.extend(graph.get(x, ()))
        return False
    return {tuple(sorted((a, b))) for a in list(graph) for b in graph[a] if reaches(b, a)}


def test_the_checks_see_the_package():
    # A parser that found nothing would pass everything below.
    assert {"model", "sgd", "network", "network2"} <= set(MODULES)
    assert "model" in GRAPH["network"]


def test_no_new_import_cycle():
    new = _cycles(GRAPH) - KNOWN_CYCLES
    assert not new, f"import cycles between cbp modules: {sorted(new)}"


def test_known_cycles_still_exist():
    gone = KNOWN_CYCLES - _cycles(GRAPH)
    assert not gone, f"these cycles are gone: delete them from KNOWN_CYCLES: {sorted(gone)}"


def test_no_new_private_access():
    new = {k: v for k, v in PRIVATE.items() if k not in KNOWN_PRIVATE}
    assert not new, "modules read other modules' private names (module, expression: lines): " + \
        "; ".join(f"{m}: {e}: {v}" for (m, e), v in sorted(new.items()))


def test_known_private_accesses_still_exist():
    gone = KNOWN_PRIVATE - set(PRIVATE)
    assert not gone, f"no longer read: delete them from KNOWN_PRIVATE: {sorted(gone)}"


def test_the_private_check_catches_a_planted_access():
    tree = ast.parse("from .model import _mean\nimport cbp.model as m\nx = net._params\n")
    MODULES["_planted"] = tree
    try:
        _, private = _graph_and_private()
    finally:
        del MODULES["_planted"]
    found = {e for (m, e) in private if m == "_planted"}
    assert found == {"from model import _mean", "net._params"}
