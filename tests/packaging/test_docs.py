"""The typed, documented API: the _core.pyi stub, the docs' API pages, numpydoc's checks."""
import ast
import importlib
import inspect
import re

import pytest

import cbp
import cbp._core
from conftest import ROOT

STUB = ROOT / "src" / "cbp" / "_core.pyi"
API = ROOT / "docs" / "api"
CONF = ROOT / "docs" / "conf.py"

# The modules whose every public name the API reference must cover.
PUBLIC_MODULES = ["cbp.sgd", "cbp.errors", "cbp.plot", "cbp.datasets", "cbp.io", "cbp.explain",
                  "cbp.cli", "cbp.network", "cbp.network2", "cbp.mnist_loader", "cbp.sklearn",
                  "cbp.gradcheck", "cbp.network3", "cbp.expand_mnist", "cbp.reference"]


def _stub_functions():
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    constants = {node.target.id for node in tree.body if isinstance(node, ast.AnnAssign)}
    return functions, constants


def test_core_stub_matches_the_extension():
    """Every public function of the compiled core is in _core.pyi, with its parameters."""
    functions, constants = _stub_functions()
    public = {name for name in dir(cbp._core) if not name.startswith("_")
              and callable(getattr(cbp._core, name)) and not inspect.ismodule(getattr(cbp._core, name))}
    assert public == set(functions), (sorted(public - set(functions)),
                                      sorted(set(functions) - public))
    assert "MAX_LAYERS" in constants
    for name, node in functions.items():
        signature = inspect.signature(getattr(cbp._core, name))
        compiled = [(p.name, p.default is not inspect.Parameter.empty)
                    for p in signature.parameters.values()]
        args = node.args.args
        defaults = [False] * (len(args) - len(node.args.defaults)) + [True] * len(node.args.defaults)
        stubbed = [(a.arg, d) for a, d in zip(args, defaults)]
        assert stubbed == compiled, name


def test_package_ships_the_typing_markers():
    import tomllib
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = data["tool"]["setuptools"]["package-data"]["cbp"]
    assert "py.typed" in package_data and "*.pyi" in package_data
    assert (ROOT / "src" / "cbp" / "py.typed").exists()


def _documented_modules():
    pages = {}
    for page in API.glob("*.rst"):
        for name in re.findall(r"^\.\. automodule:: (\S+)", page.read_text(encoding="utf-8"), re.M):
            pages[name] = page.name
    return pages


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_module_has_an_api_page(module):
    assert module in _documented_modules(), f"no docs/api page has '.. automodule:: {module}'"


def test_every_name_of_the_namespace_is_documented():
    """cbp.__all__: each name on the cbp page, or documented with its own module's page."""
    page = (API / "cbp.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. auto(?:class|function|exception|data):: cbp\.(\w+)",
                                page, re.M))
    modules = _documented_modules()
    for name in cbp.__all__:
        if name == "__version__":
            continue
        home = getattr(cbp, name).__module__
        assert name in documented or home in modules, (name, home)


def test_every_documented_constant_has_its_value():
    """A ``.. data::`` written by hand (a constant defined in a private module, which autodoc
    does not document) shows the value the module has, not an old one."""
    checked = 0
    for page in API.glob("*.rst"):
        text = page.read_text(encoding="utf-8")
        modules = re.findall(r"^\.\. automodule:: (\S+)", text, re.M)
        for name, value in re.findall(r"^\.\. data:: (\w+)\n\s+:value: (.+)$", text, re.M):
            assert value.strip() == repr(getattr(importlib.import_module(modules[0]), name)), \
                (page.name, name)
            checked += 1
    assert checked >= 2      # DEFAULT_MAX_BYTES and DEFAULT_URL of cbp.datasets


def _validation_config():
    """numpydoc's check set and exclusions, read from docs/conf.py (one source of truth)."""
    tree = ast.parse(CONF.read_text(encoding="utf-8"))
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("numpydoc_validation_checks", "numpydoc_validation_exclude"):
                values[name] = ast.literal_eval(node.value)
    return values["numpydoc_validation_checks"], values["numpydoc_validation_exclude"]


def _private_homes(obj):
    """(its module,) when ``obj`` comes from one of cbp's private modules, else ()."""
    home = getattr(obj, "__module__", None) or ""
    return (home,) if home.startswith("cbp.") and "._" in f".{home[4:]}" else ()


def _public_objects():
    """(dotted name, object) for every public function, class and method of the API."""
    seen = set()
    for module_name in ["cbp"] + PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:                   # cbp.sklearn without scikit-learn
            continue
        names = getattr(module, "__all__", None) or [
            n for n, v in vars(module).items() if not n.startswith("_")
            and getattr(v, "__module__", None) in (module_name, *_private_homes(v))]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            # A class defined in a private module (network3's layers live in
            # _layers3) is documented, and validated by the docs build, under
            # the public module that exports it.
            home = module_name if _private_homes(obj) else obj.__module__
            qualified = f"{home}.{obj.__qualname__}"
            if qualified in seen or not obj.__module__.startswith("cbp"):
                continue
            seen.add(qualified)
            yield qualified
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") or not (inspect.isfunction(value)
                                                    or isinstance(value, (property, staticmethod))):
                        continue
                    yield f"{qualified}.{attr}"


def test_numpydoc_validation_passes_for_every_public_name():
    """The checks the docs build applies (docs/conf.py), run here on every public name."""
    validate = pytest.importorskip("numpydoc.validate")
    checks, exclude = _validation_config()
    assert "all" in checks
    skipped = checks - {"all"}
    failures = []
    for name in _public_objects():
        if any(re.search(pattern, name) for pattern in exclude):
            continue
        errors = [(code, text) for code, text in validate.validate(name)["errors"]
                  if code not in skipped]
        if errors:
            failures.append((name, errors))
    assert not failures, "\n".join(f"{n}: {e}" for n, e in failures)
