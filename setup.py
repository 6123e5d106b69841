"""Build the Cython core.

Default flags are portable (``-O3`` for any x86-64).  Opt-ins, read from the
environment at build time:

``CBP_NATIVE=1``
    add ``-march=native`` (machine-specific code; do not ship such a wheel).
``CBP_DEBUG=1``
    turn on Cython's ``boundscheck``/``wraparound``/``initializedcheck`` and
    build without optimisation and with debug information (``-O0 -g``), so an
    out-of-bounds access raises instead of corrupting memory.

A release build (the default) carries no debug information (``-g0``).
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


debug = _flag("CBP_DEBUG")
native = _flag("CBP_NATIVE")

if sys.platform == "win32":
    compile_args = ["/O2"]
    link_args = []
    openmp = ["/openmp"]
else:
    # Python's own CFLAGS carry -g; these arguments come after them and GCC and
    # Clang obey the last -g, so -g0 keeps debug information out of a release
    # build (it would be most of the shipped extension).
    compile_args = ["-O0", "-g"] if debug else ["-O3", "-g0"]
    if native:
        compile_args.append("-march=native")
    openmp = ["-fopenmp"]
    # No -s / --strip-debug at link time: with -g0 they saved nothing
    # (--strip-debug) or only the symbol table that profilers use (-s, 3.5 %).
    link_args = ["-fopenmp"]
    compile_args += openmp

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": not debug,
    "embedsignature": True,
}

extensions = [
    Extension(
        "cbp._core",
        ["src/cbp/_core.pyx"],
        # C headers the core includes: a change to one rebuilds the extension
        # (Cython tracks only the .pyx/.pxi files and the headers it names).
        depends=["src/cbp/_kernels.h", "src/cbp/_bp2.h", "src/cbp/_elementwise.h", "src/cbp/_wide.h",
                 "src/cbp/_sweep.h", "src/cbp/_gemm.h", "src/cbp/_machine.h",
                 "src/cbp/_conv3.h"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
