"""The installed distribution: one version everywhere, licence files in its
metadata, and a release extension without debug information.

These tests read the metadata of the *installed* cbp (what pip wrote), so they
check the build configuration, not only the files in the checkout.
"""
import importlib.metadata as md
from importlib import resources
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import cbp
from cbp import _core
from conftest import ROOT

# The distribution's name on the package index ("cbp" there is another project);
# the import name and the command stay cbp.
DIST = "cbp-backprop"
VERSION_RE = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[0-9a-z.]+)?$")


def _run(*args):
    """Run a command from outside the checkout, so that the installed cbp answers."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent)


# ---------------------------------------------------------------- version

def test_version_matches_installed_metadata():
    assert cbp.__version__ == md.version(DIST)
    assert VERSION_RE.match(cbp.__version__), cbp.__version__
    assert cbp.__version__ != "0+unknown"        # the fallback is only for uninstalled code


def test_version_matches_pyproject():
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("no pyproject.toml beside the tests (tests run outside a checkout)")
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    assert "version" not in project.get("dynamic", [])
    assert project["version"] == cbp.__version__


def test_python_m_cbp_version():
    out = _run(sys.executable, "-m", "cbp", "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"cbp {md.version(DIST)}"


def test_console_script_version():
    script = shutil.which("cbp", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip(f"no cbp script beside {sys.executable} (not installed into this environment)")
    out = _run(script, "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"cbp {cbp.__version__}"


def test_version_fallback_without_metadata():
    # Simulate code put on sys.path without being installed: no metadata for "cbp-backprop".
    code = (
        "import importlib.metadata as md\n"
        "real = md.version\n"
        "def version(name):\n"
        "    if name == 'cbp-backprop':\n"
        "        raise md.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "md.version = version\n"
        "import cbp\n"
        "print(cbp.__version__)\n"
    )
    out = _run(sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0+unknown"


# ---------------------------------------------------------------- licences

def _license_file(name):
    """The installed copy of a licence file, found through the distribution's file list."""
    hits = [f for f in (md.files(DIST) or []) if f.name == name and "dist-info" in str(f)]
    assert len(hits) == 1, f"{name} is not in the installed metadata: {md.files(DIST)}"
    path = Path(hits[0].locate())
    assert path.is_file(), path
    return path.read_text(encoding="utf-8")


def test_license_expression_is_spdx():
    # The code is MIT; the wheel also carries the CC BY-SA 3.0 MNIST sample,
    # and an SPDX expression covers every file distributed (PEP 639).
    meta = md.metadata(DIST)
    assert meta["License-Expression"] == "MIT AND CC-BY-SA-3.0"
    # The deprecated free-text field must not contradict the expression.
    assert meta.get("License") is None
    assert not [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]


def test_license_files_listed_in_metadata():
    listed = md.metadata(DIST).get_all("License-File") or []
    assert set(listed) >= {"LICENSE", "LICENSE-DATA"}, listed


def test_mit_license_text_installed():
    text = _license_file("LICENSE")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the cbp developers" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_data_license_names_the_shipped_sample_and_its_authors():
    text = _license_file("LICENSE-DATA")
    assert "CC BY-SA 3.0" in text
    assert "https://creativecommons.org/licenses/by-sa/3.0/" in text
    for author in ("Yann LeCun", "Corinna Cortes", "Christopher J. C. Burges"):
        assert author in " ".join(text.split()), author
    # The file it speaks of is the one the package really ships.
    named = set(re.findall(r"[\w/]+\.npz", text))
    shipped = {f.name for f in (resources.files("cbp") / "data").iterdir()
               if f.name.endswith(".npz")}
    assert shipped and {Path(n).name for n in named} == shipped


# ---------------------------------------------------------------- the extension

def _elf_section_names(path):
    """Section names of a 64-bit little-endian ELF file (enough for Linux x86-64/arm64)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        pytest.skip(f"{path} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    names_off, = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)
    names = []
    for i in range(shnum):
        name_idx, = struct.unpack_from("<I", data, shoff + i * shentsize)
        start = names_off + name_idx
        names.append(data[start:data.index(b"\0", start)].decode("ascii"))
    return names


def test_extension_debug_information_matches_build():
    sections = _elf_section_names(_core.__file__)
    assert ".text" in sections and ".dynsym" in sections      # the reader works
    debug = [s for s in sections if s.startswith(".debug_")]
    if os.environ.get("CBP_EXPECT_DEBUG_BUILD", "") == "1":
        # CBP_DEBUG=1 is -O0 -g: the debugger needs these.
        assert ".debug_info" in debug, sections
    else:
        # A release build is -g0: Python's own -g must not leak into it.
        assert debug == [], f"{_core.__file__} carries debug sections {debug}"


# ---------------------------------------------------------------- names

def test_distribution_name_is_not_the_import_name():
    # "cbp" on PyPI is an unrelated project (a clone-URL tool with its own
    # cbp command): every install line must name cbp-backprop.
    assert md.metadata(DIST)["Name"] == DIST
    # ... and that distribution is the one that provides the package cbp.
    assert DIST in md.packages_distributions().get("cbp", [])


@pytest.mark.parametrize("relative", ["README.md", "docs", "src/cbp"])
def test_install_advice_names_the_distribution(relative):
    # No 'pip install "cbp[...]"' (someone else's project) anywhere users read.
    where = ROOT / relative
    if not where.exists():
        pytest.skip(f"{relative} is not beside the tests (tests run outside a checkout)")
    files = [where] if where.is_file() else [p for p in where.rglob("*")
                                               if p.suffix in (".py", ".rst", ".md", ".pyx")
                                               and "_build" not in p.parts]
    bad = re.compile(r"""pip install ['"]?cbp(\[|['"\s]|$)""")
    offenders = [f"{p}:{i}" for p in files
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if bad.search(line)]
    assert not offenders, offenders
