"""Every Python code block of every docs page runs, as a reader would run it.

The blocks of a page are put one after the other into one script (a page's
later blocks use what its earlier ones made), which runs in a fresh
process from an empty directory with warnings turned into errors: a block
that fails, or warns without the page saying why, fails here.  The Dask
page's script starts a cluster of worker processes, which is why its code
keeps its ``if __name__ == "__main__":`` guard: this runs it as a script.
"""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

DOCS = ROOT / "docs"

# Warnings a page's own text explains (page -> message patterns): the book's
# loader falls back to the embedded sample, once, with a warning saying so
# (the book page and the landing page say it).
EXPLAINED = {page: [r"cbp.mnist_loader: MNIST not found"]
             for page in ("book.rst", "index.rst", "chapter6.rst")}
# Runs a page shows at the book's length, shortened here (page -> (text, replacement)):
# the same calls, fewer epochs.
SHORTENED = {"chapter6.rst": [("net.SGD(training_data, 60,", "net.SGD(training_data, 1,")]}
# Pages that need an optional extra to run (page -> modules).
NEEDS = {"sklearn_dask.rst": ["sklearn", "dask", "distributed", "dask_ml"],
         "index.rst": ["sklearn", "matplotlib"], "pictures.rst": ["matplotlib"]}

BLOCK = re.compile(r"^( *)\.\. code-block:: python[ \t]*\n((?:\1 +:[^\n]*\n)*)\n"
                   r"((?:(?:\1 +[^\n]*)?\n)+)", re.M)


def code_blocks(text):
    """The Python code blocks of a reStructuredText page, dedented, in order."""
    return [textwrap.dedent(m.group(3)).strip("\n") + "\n" for m in BLOCK.finditer(text)]


def _pages():
    if not DOCS.is_dir():
        return []
    return sorted(p.name for p in DOCS.glob("*.rst") if code_blocks(p.read_text("utf-8")))


def test_the_block_reader_finds_blocks():
    text = ("Intro.\n\n.. code-block:: python\n\n   a = 1\n\n   b = a + 1\n\nText.\n\n"
            "- item\n\n  .. code-block:: python\n     :caption: x\n\n     c = 3\n")
    assert code_blocks(text) == ["a = 1\n\nb = a + 1\n", "c = 3\n"]


@pytest.mark.skipif(not DOCS.is_dir(), reason="no docs/ beside the tests (run outside a checkout)")
def test_the_pages_with_code_are_found():
    # Every page is run (below); these must be among them.
    assert {"index.rst", "quickstart.rst", "pictures.rst", "sklearn_dask.rst"} <= set(_pages())


def scripts(blocks):
    """A page's blocks as scripts: a block with its own ``__main__`` guard stands alone
    (as a reader saves it, so that worker processes importing it run nothing else)."""
    shared = [b for b in blocks if "if __name__ == \"__main__\":" not in b]
    alone = [b for b in blocks if "if __name__ == \"__main__\":" in b]
    return ([shared] if shared else []) + [[b] for b in alone]


@pytest.mark.skipif(os.environ.get("CBP_EXPECT_DEBUG_BUILD") == "1",
                    reason="the pages' code runs in the release build's tests; the debug build "
                           "runs the core's")
@pytest.mark.parametrize("page", _pages())
def test_page_code_runs(page, tmp_path):
    for module in NEEDS.get(page, []):
        pytest.importorskip(module, reason=f"{page} needs {module}")
    text = (DOCS / page).read_text("utf-8")
    for long, short in SHORTENED.get(page, []):
        assert long in text, f"{page} no longer shows {long!r}: update SHORTENED"
        text = text.replace(long, short)
    blocks = code_blocks(text)
    filters = "".join(f"    warnings.filterwarnings('ignore', {m!r})\n"
                      for m in EXPLAINED.get(page, []))
    stdout = []
    for k, part in enumerate(scripts(blocks)):
        script = tmp_path / f"{Path(page).stem}_code_{k}.py"
        # Warnings are errors in the script's own process; Dask's workers,
        # which import the script again (as __mp_main__), keep the defaults
        # and report a warning as a user would see it.
        script.write_text("import warnings\nif __name__ == '__main__':\n"
                          "    warnings.simplefilter('error')\n"
                          # Libraries' own deprecation notices are theirs, not the page's.
                          "    warnings.simplefilter('default', DeprecationWarning)\n"
                          "    warnings.simplefilter('default', PendingDeprecationWarning)\n"
                          + filters + "\n".join(part), encoding="utf-8")
        env = dict(os.environ, MPLBACKEND="agg", PYTHONWARNINGS="")
        out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                             text=True, timeout=900, env=env)
        assert out.returncode == 0, f"{page}'s code failed:\n{out.stdout}\n{out.stderr}"
        if page == "sklearn_dask.rst":
            # No warning in the workers either (a fit that stops at max_iter).
            assert "Warning" not in out.stderr, out.stderr
        stdout.append(out.stdout)
    printed = "".join(stdout)
    if page == "book.rst":
        # The lines the page shows are the ones its code prints.
        shown = re.findall(r"^   (Epoch \d+: \d+ / 1000)$", (DOCS / page).read_text("utf-8"), re.M)
        assert shown and "\n".join(shown) in printed, printed
    if page == "sklearn_dask.rst":
        # The Dask example's model learns: it prints its accuracy.
        accuracy = float(re.findall(r"accuracy ([0-9.]+)", printed)[-1])
        assert accuracy > 0.85, printed
