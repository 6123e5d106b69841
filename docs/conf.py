"""Sphinx configuration of cbp's documentation (``python -m sphinx -W -b html docs OUT``).

Three pages are written at build time from the installed package, so they
cannot drift from it: the command line (``cbp ... --help``), the teaching
trace of note 001's example (``cbp.explain``), and the performance table
(the README's latest bench run).  The gallery (``examples/``) is executed
on every build.
"""
import os
import re
import sys
from pathlib import Path

import cbp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATED = HERE / "_generated"

project = "cbp"
author = "the cbp authors"
copyright = "the cbp authors"
release = cbp.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    # MathJax 3 served from the site itself (_static/mathjax): the math is
    # typeset offline and no page loads anything from a CDN.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "myst_parser",                  # CHANGELOG.md, included by changelog.rst
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
# The Markdown changelog is included, not a page of its own.
source_suffix = {".rst": "restructuredtext"}
myst_heading_anchors = 2
# Copy only the code of a prompt block, not ">>> " or the output.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.py",
                    "auto_examples/*.ipynb", "auto_examples/*.zip", "auto_examples/*.json"]
templates_path = []
html_theme = "pydata_sphinx_theme"
html_title = f"cbp {release}"
html_theme_options = {"navigation_with_keys": False, "show_prev_next": True,
                      "secondary_sidebar_items": ["page-toc"],
                      # Every section in the top bar (none hidden under "More").
                      "header_links_before_dropdown": 16,
                      "navbar_align": "left"}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["cbp.css"]
# Top-level pages have no section to navigate: no empty left sidebar there.
html_sidebars = {page: [] for page in ("index", "install", "quickstart", "book", "trace", "cli",
                                       "sklearn_dask", "model_files", "pictures", "performance",
                                       "internals", "changelog", "chapter6")}

# Inherited public members are shown (SGD.run on Adam's page, fit on the
# estimators'), except what NumPy, the standard library and scikit-learn's
# mixins define: those are documented by their projects.
autodoc_default_options = {"members": True, "show-inheritance": True,
                           "inherited-members": "ndarray, tuple, BaseException, Exception, "
                                                "Warning, BaseEstimator, ClassifierMixin, "
                                                "RegressorMixin, _MetadataRequester, Sequence, "
                                                "object"}
autodoc_member_order = "bysource"
autodoc_typehints = "none"          # numpydoc's Parameters sections carry the types

numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# A -n (nitpicky) build resolves every reference; these name types that
# are not documented objects (numpydoc's words, or outside intersphinx).
# Other projects' objects: the site links to no other site (no intersphinx:
# the build runs offline).
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|sklearn|matplotlib|dask|dask_ml|distributed|os|pathlib)\..*"),
]
numpydoc_attributes_as_param_list = False
# The docstring checks every public name must pass (numpydoc's validation
# codes): every parameter documented, with a type, in the signature's order
# (PR01-PR05, PR10), a one-line summary that ends with a period (SS01, SS03,
# SS04), sections in numpydoc's order and spelling (GL03-GL07), and Returns
# and See Also sections well formed.  Left out: extended summaries, examples
# and See Also on every object (ES01, EX01, SA01); the description of return
# values and parameters whose type says it all (RT01-RT03, PR07, PR08, PR09);
# summaries starting with a capital (SS02: "σ(z) = ..." is the book's notation)
# or fitting a verb rule (SS05, SS06); where a docstring's text starts and
# ends (GL01, GL02); dotted types such as "int >= 1" (PR06); Yields (YD01).
numpydoc_validation_checks = {"all", "ES01", "EX01", "SA01", "RT01", "RT02", "RT03",
                              "PR06", "PR07", "PR08", "PR09", "SS02", "SS05", "SS06",
                              "GL01", "GL02", "YD01"}
numpydoc_validation_exclude = {r"\._[a-z]", r"\.__[a-z]+__$",
                               # a NamedTuple's fields: documented by the class
                               r"^cbp\.(sgd|optimizer)\.Rule\.(code|formula|state)$",
                               r"^cbp\.optimizer\.Buffers\.\w+$",
                               # the training callbacks' hooks: documented once, by Callback
                               r"^cbp\.training\.(?!Callback\.)\w+\.on_(train|epoch)_(begin|end)$",
                               # an ndarray view: its constructor is NumPy's
                               r"^cbp\.model\.Snapshot$",
                               # NumPy's in-place methods, refused on a snapshot
                               r"^cbp\.model\.Snapshot\.(fill|sort|put|partition)$",
                               # the layers' protocol with network3.Network (one line each)
                               r"^cbp\.network3\.\w+\."
                               r"(forward_batch|backward_batch|team_entry|train_flops)$"}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "min_reported_time": 0,
    # A script's last expression is not echoed: plot calls return their
    # Figure, whose repr ("<Figure size ...>") is no output a reader wants.
    "capture_repr": (),
    # The timing pages load DataTables from a CDN: not written (the site
    # loads nothing from elsewhere).
    "write_computation_times": False,
}

os.environ.setdefault("MPLBACKEND", "agg")


# -- pages generated from the package ---------------------------------------------


def _write(name, text):
    GENERATED.mkdir(exist_ok=True)
    path = GENERATED / name
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _literal(text):
    return "\n".join(("    " + line).rstrip() for line in text.rstrip().splitlines()) + "\n"


def _cli_page():
    """Every command's --help, as the shell prints it."""
    from cbp.cli import build_parser
    os.environ["COLUMNS"] = "74"      # argparse wraps to this: the page's text width
    parser = build_parser()
    out = [".. This file is generated by docs/conf.py from cbp.cli.build_parser().\n",
           "::\n", "    $ cbp --help", _literal(parser.format_help())]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        out += [f"\n``cbp {name}``\n" + "~" * (len(name) + 8) + "\n", "::\n",
                f"    $ cbp {name} --help", _literal(command.format_help())]
    _write("cli_help.rst", "\n".join(out))


def _trace_page():
    """The trace of note 001's 2-3-2 example, computed now by the kernels."""
    from cbp.explain import explain, worked_example
    _write("trace.txt", str(explain(*worked_example())) + "\n")


def _md_inline(text):
    text = re.sub(r"<!--.*?-->", "", text).strip()
    # Where the bench machine kept its files says nothing to a reader.
    text = re.sub(r"(?<![\w.])/(?:[\w.+-]+/)+(shared/data)\b", r"../\1", text)
    text = re.sub(r"\s*<sub>(.*?)</sub>", r" (\1)", text)     # a spread, in the README's small print
    text = re.sub(r"`([^`]+)`", r"``\1``", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"**\1**", text)


def _performance_page():
    """The README's Performance section (the latest bench run), as reStructuredText."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Performance\n(.*?)(?=^## )", readme, re.S | re.M)
    out = [".. This file is generated by docs/conf.py from the README's Performance section.\n"]
    if match is None:
        out.append("The README has no Performance section in this build.\n")
        _write("performance.rst", "\n".join(out))
        return
    rows, paragraph = [], []

    def flush():
        if paragraph:
            out.append(_md_inline(" ".join(paragraph)) + "\n")
            paragraph.clear()
        if rows:
            header, body = rows[0], [r for r in rows[2:]]
            out.append(".. list-table::\n   :header-rows: 1\n")
            for row in [header] + body:
                cells = [c.strip() for c in row.strip().strip("|").split("|")]
                out.append("   * - " + "\n     - ".join(_md_inline(c) or " " for c in cells))
            out.append("")
            rows.clear()

    fenced = False
    for line in match.group(1).splitlines():
        if line.startswith("```"):
            # A fenced block becomes a literal block.
            if not fenced:
                flush()
                out.append("::\n")
            else:
                out.append("")
            fenced = not fenced
            continue
        if fenced:
            out.append("    " + line)
            continue
        if line.startswith("|"):
            if paragraph:
                out.append(_md_inline(" ".join(paragraph)) + "\n")
                paragraph.clear()
            rows.append(line)
        elif not line.strip():
            flush()
        else:
            if rows:
                flush()
            paragraph.append(line.strip())
    flush()
    _write("performance.rst", "\n".join(out) + "\n")


def _missing_modules():
    """API pages of modules this checkout does not have (yet): left out of the build."""
    import importlib
    missing = []
    for page in sorted((HERE / "api").glob("*.rst")):
        module = (page.read_text(encoding="utf-8").split(".. automodule:: ", 1) + [""])[1]
        name = module.split()[0] if module.strip() else None
        if name is None:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            # CI sets CBP_DOCS_STRICT=1: there, every module must be documented.
            if os.environ.get("CBP_DOCS_STRICT") == "1":
                raise RuntimeError(f"{page.name}: cannot import {name}: {exc}") from exc
            missing.append(f"api/{page.name}")
    return missing


def _speed_figure():
    """The landing page's bars: one epoch's speed-up over the others, from the committed bench run."""
    import json

    import matplotlib
    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    source = ROOT / "bench" / "results" / "full.json"
    GENERATED.mkdir(exist_ok=True)
    out = GENERATED / "speed.png"
    rows = []
    if source.is_file():
        run = json.loads(source.read_text(encoding="utf-8"))
        rows = [r for r in run.get("epochs", []) if r.get("mode") == "one_core"
                and r.get("dtype") == "float64" and r.get("speedup")]
    peers = [("network_py", "network.py (the book)"), ("torch", "PyTorch"),
             ("sklearn", "scikit-learn MLP"), ("jax", "JAX")]
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    if rows:
        import numpy as np
        width = 0.8 / len(peers)
        x = np.arange(len(rows))
        for k, (key, label) in enumerate(peers):
            values = [r["speedup"].get(key, {}).get("median", np.nan) for r in rows]
            bars = ax.bar(x + (k - (len(peers) - 1) / 2) * width, values, width, label=label)
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        ax.set_xticks(x, [f"{r['config']}\nm = {r['m']}" for r in rows], fontsize=8)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_ylabel("× faster than (one core)")
        ax.legend(fontsize=8, ncols=4, loc="upper center", bbox_to_anchor=(0.5, 1.15),
                  frameon=False)
        ax.set_title(f"one epoch of 10,000 MNIST images, float64; "
                     f"{run['meta']['machine'].get('cpu', '')}, "
                     f"bench run of {run['meta'].get('date', '')[:10]}", fontsize=9, pad=24)
    else:
        ax.text(0.5, 0.5, "no bench/results/full.json in this build", ha="center")
        ax.set_axis_off()
    fig.savefig(out, dpi=110)
    plt.close(fig)


exclude_patterns += _missing_modules()
_speed_figure()
_cli_page()
_trace_page()
_performance_page()


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn generates set_*_request methods on every estimator (metadata
    # routing); they are scikit-learn's API, documented there.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _public_bases(app, name, obj, options, bases):
    # "Bases:" lists no private class (the optimizers' driver, the
    # estimators' training loop) but its public bases: the private class's
    # members are shown on each page.
    def private(b):
        return b.__name__.startswith("_") or getattr(b, "__module__", "").startswith("cbp._")

    def public(b):
        return [b] if not private(b) else [p for base in b.__bases__ for p in public(base)]

    bases[:] = list(dict.fromkeys(p for b in bases for p in public(b)))


def _object(dotted):
    """The Python object a dotted name names, or None."""
    import importlib
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def _documented_names(dotted):
    """Names under which the object ``dotted`` may be documented: ``cbp.SGD.run`` ->
    ``cbp.sgd.SGD.run`` (the class's own module), and so on for each prefix."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        obj = _object(".".join(parts[:i]))
        if obj is None:
            continue
        if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            yield ".".join([f"{obj.__module__}.{obj.__qualname__}"] + parts[i:])
        elif hasattr(obj, "__spec__"):               # a module
            yield ".".join([obj.__name__] + parts[i:])


def _resolve_alias(app, env, node, contnode):
    """Resolve a Python reference to a name re-exported elsewhere (``cbp.SGD``, ``Layers``
    from ``cbp.Network``'s docstring): the same object, documented under its own module."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    module, cls = node.get("py:module"), node.get("py:class")
    scopes = [module] if module else []
    if module and cls:
        owner = _object(f"{module}.{cls}")
        if owner is not None and getattr(owner, "__module__", None):
            scopes.append(owner.__module__)
    candidates = [target] + [f"{s}.{target}" for s in scopes]
    candidates += [f"{s}.{cls}.{target}" for s in scopes if cls]
    domain = env.get_domain("py")
    for candidate in candidates:
        for name in dict.fromkeys([candidate, *_documented_names(candidate)]):
            if name in domain.objects:
                return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                           name, node, contnode)
    # Last: the one documented object of the role's kind with that last name
    # (``Layers`` seen from a drop-in's inherited ``weights``).
    kinds = set(domain.objtypes_for_role(node["reftype"]) or ())
    found = [name for name, entry in domain.objects.items()
             if name.endswith("." + target) and entry.objtype in kinds and not entry.aliased]
    if len(found) == 1:
        return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                   found[0], node, contnode)
    return None


def _code_module(app, modname, fullname):
    """viewcode: the module whose file holds a function's code.  cbp.datasets
    gives its functions its own name as ``__module__`` (users call them by it)
    while their code is in private modules; a function's globals are those of
    the module that defines it."""
    namespace = getattr(_object(f"{modname}.{fullname}"), "__globals__", None)
    return namespace.get("__name__") if namespace else None


def setup(app):
    app.connect("viewcode-follow-imported", _code_module)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("missing-reference", _resolve_alias)
