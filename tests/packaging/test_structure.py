"""The package's shape (issue 19): no import cycle, no reading of another module's private names.

Both checks read the sources with :mod:`ast`, imports inside functions included
(an import moved into a function hides a cycle from Python, not from this test).
Every module is seen, subpackages included, named by its dotted path below
``cbp``: ``model``, ``datasets`` (a package's ``__init__``), ``datasets._idx``;
relative imports (``from . import x``, ``from ..model import y``) are resolved
from the module's own package.  Importing a submodule is no edge to its
package (Python runs a package's ``__init__`` before any of its modules);
importing a *name* a package's ``__init__`` defines is.

"Private" means a name with one leading underscore: ``from .model import _mean``,
``model._elementwise`` or ``net._params`` read from a module that does not define
that name.  A module may use its own private names and the public names of a
private module (``_core.train_epoch``: the compiled core is an interface).

A subpackage is one unit, like a C translation unit: the private names of its
modules are shared among them (``datasets._load`` may import ``_sniff`` from
``datasets._idx``), and with the subpackages inside it, but with nothing
outside it: no top-level module, no sibling subpackage, and not the enclosing
package for the private names of a subpackage nested in it.  The top-level
modules of ``cbp`` are no such unit: each keeps its private names to itself.

``KNOWN_CYCLES`` and ``KNOWN_PRIVATE`` list what main carried when these checks
were written (issue 19's review counted three cycles and 36 private accesses).
They may only shrink: a new cycle or a new private access fails, and so does an
entry that no longer occurs (delete it, so that it cannot come back unseen).
"""
import ast
import collections

import pytest
from conftest import ROOT

PACKAGE = ROOT / "src" / "cbp"
if not PACKAGE.is_dir():
    pytest.skip(f"the sources are not at {PACKAGE} (tests run outside a checkout)",
                allow_module_level=True)

KNOWN_CYCLES: set = set()

KNOWN_PRIVATE: set = set()

# Names of the standard library's that are private by spelling only.
STDLIB_PRIVATE = {"sys._getframe"}


def _module_name(path):
    """``path``'s module name below cbp: a package's ``__init__`` is named after the
    package, except cbp's own, which keeps the name ``__init__``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _in_a_package(path):
    """True if every folder from ``path`` up to cbp is a package (has an ``__init__.py``)."""
    return all((folder / "__init__.py").is_file()
               for folder in path.parents if folder.is_relative_to(PACKAGE))


def _modules():
    files = [p for p in sorted(PACKAGE.rglob("*.py")) if _in_a_package(p)]
    modules = {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in files}
    packages = {_module_name(p) for p in files if p.name == "__init__.py" and p.parent != PACKAGE}
    # The compiled core is a module too (imported, never parsed).
    compiled = {_module_name(p) for p in PACKAGE.rglob("*.pyx") if _in_a_package(p)}
    return modules, packages, compiled


MODULES, PACKAGES, COMPILED = _modules()


def _package_of(name, packages):
    """The package ``from . import`` means in module ``name`` ("" for cbp itself)."""
    return name if name in packages else name.rpartition(".")[0] if "." in name else ""


def _unit(name, packages):
    """The subpackage whose private names module ``name`` shares, or None (top level)."""
    return _package_of(name, packages) or None


def _inside(name, unit):
    return unit is not None and (name == unit or name.startswith(unit + "."))


def _from_base(node, name, packages):
    """The module below cbp ("" for cbp itself) a ``from`` import reads, or None outside cbp."""
    if node.level:
        base = _package_of(name, packages)
        for _ in range(node.level - 1):
            if not base:
                return None               # above cbp
            base = base.rpartition(".")[0]
        return ".".join(p for p in (base, node.module) if p)
    module = node.module or ""
    if module == "cbp" or module.startswith("cbp."):
        return module[4:]
    return None


def _cbp_imports(node, name, known, packages):
    """(module, name) pairs that one import statement of module ``name`` takes from cbp's
    own modules (``known``); the name is None for a module imported whole."""
    if isinstance(node, ast.Import):
        return [(a.name[4:], None) for a in node.names
                if a.name.startswith("cbp.") and a.name[4:] in known]
    base = _from_base(node, name, packages)
    if base is None:
        return []
    found = []
    for alias in node.names:
        sub = f"{base}.{alias.name}" if base else alias.name
        if sub in known:
            found.append((sub, None))
        elif base in known or base == "":
            found.append((base or "__init__", alias.name))
    return found


def _defined(tree):
    """The names a module defines: functions, classes, names and attributes it assigns."""
    own = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            own.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            own.add(n.id)
    return own


def _is_private(name):
    return name.startswith("_") and not name.startswith("__")


def _graph_and_private(modules=None, packages=None, compiled=None):
    modules = MODULES if modules is None else modules
    packages = PACKAGES if packages is None else packages
    known = set(modules) | (COMPILED if compiled is None else compiled)
    defined = {name: _defined(tree) for name, tree in modules.items()}
    graph = collections.defaultdict(set)
    private = collections.defaultdict(list)
    for name, tree in modules.items():
        # Its own names and those of every module of a subpackage it is inside.
        own = set(defined[name]).union(*(d for other, d in defined.items()
                                         if _inside(name, _unit(other, packages))))
        for n in ast.walk(tree):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                for other, imported in _cbp_imports(n, name, known, packages):
                    if other == name:
                        continue
                    graph[name].add(other)
                    if (imported and _is_private(imported)
                            and not _inside(name, _unit(other, packages))):
                        private[(name, f"from {other} import {imported}")].append(n.lineno)
            elif isinstance(n, ast.Attribute) and _is_private(n.attr) and n.attr not in own:
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
    _, private = _graph_and_private({**MODULES, "_planted": tree})
    found = {e for (m, e) in private if m == "_planted"}
    assert found == {"from model import _mean", "net._params"}


def _plant(sources):
    modules = {name: ast.parse(text) for name, text in sources.items()}
    packages = {name.rpartition(".")[0] for name in modules if "." in name}
    return _graph_and_private(modules, packages, compiled=set())


def test_subpackages_are_seen_with_their_relative_imports():
    assert {"datasets", "datasets._pickle", "datasets._idx"} <= set(MODULES)
    assert "datasets" in PACKAGES and "datasets" in GRAPH["mnist_loader"]
    assert "datasets._pickle" in GRAPH["datasets._mnist_pkl"]   # from . import _pickle
    assert "_files" in GRAPH["datasets._common"]                 # from .. import _files
    graph, _ = _plant({
        "model": "",
        "pkg": "from . import _a\nfrom ._b import f\n",
        "pkg._a": "from .. import model\nfrom . import _b\nimport cbp.pkg.sub._c\n",
        "pkg._b": "from ..model import Network\nfrom ... import x\nfrom .._nowhere import y\n",
        "pkg.sub": "",
        "pkg.sub._c": "def f():\n    from ... import model\n",
    })
    assert graph["pkg"] == {"pkg._a", "pkg._b"}
    assert graph["pkg._a"] == {"model", "pkg._b", "pkg.sub._c"}
    assert graph["pkg._b"] == {"model"}          # ... is above cbp, _nowhere no module
    assert graph["pkg.sub._c"] == {"model"}


def test_a_name_from_a_packages_init_is_an_edge_to_it():
    graph, _ = _plant({"pkg": "from ._a import f\nhelper = 1\n",
                       "pkg._a": "from . import helper\ndef f(): pass\n",
                       "pkg._b": "from . import _a\n"})
    assert _cycles(graph) == {("pkg", "pkg._a")}


def test_private_names_are_shared_inside_a_subpackage_only():
    _, private = _plant({
        "model": "def _mean(x): pass\n",
        "pkg": "from ._a import _secret\n",
        "pkg._a": "def _secret(): pass\n",
        "pkg._b": ("from . import _a\nfrom ._a import _secret\nx = _a._secret\n"
                   "from ..model import _mean\nfrom .sub._c import _inner\n"),
        "pkg.sub": "",
        "pkg.sub._c": "from .._a import _secret\ndef _inner(): pass\n",
        "outside": ("from .pkg._a import _secret\nfrom .pkg import _a, _secret as s\n"
                    "y = _a._secret\n"),
    })
    assert set(private) == {
        ("pkg._b", "from model import _mean"),        # the top level is no unit
        ("pkg._b", "from pkg.sub._c import _inner"),  # a nested subpackage keeps its own
        ("outside", "from pkg._a import _secret"),
        ("outside", "from pkg import _secret"),
        ("outside", "_a._secret"),
    }
