"""Shared fixtures and markers for cbp's tests (see tests/README.md for where a test goes)."""
import importlib.util
import os
import signal
import sys
import warnings
from pathlib import Path

import pytest

#: The checkout (or the unpacked sdist) these tests belong to.
ROOT = Path(__file__).resolve().parents[1]
#: ``../shared`` beside the checkout: the book's originals and the MNIST files.
SHARED = ROOT.parent / "shared"
NIELSEN = SHARED / "nielsen"
DATA = SHARED / "data"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")


def require_shared(path):
    """Skip when ``path`` (under ../shared) is missing; fail instead under CBP_REQUIRE_SHARED=1.

    CI sets ``CBP_REQUIRE_SHARED=1``: there ../shared is beside the clone, and a
    test that skipped for want of it would hide a broken drop-in.
    """
    if Path(path).exists():
        return
    message = f"{path} is not there (../shared beside the checkout holds it)"
    if os.environ.get("CBP_REQUIRE_SHARED", "") not in ("", "0"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def default_sigint():
    """``preexec_fn`` for a child that a test interrupts with SIGINT.

    A background job of a non-interactive shell (``cmd &``, how CI runners and
    ``nohup`` often start the suite) inherits SIGINT ignored, and Python then
    installs no KeyboardInterrupt handler: the child would never see the
    signal.  The child gets the default disposition back, as a terminal's
    foreground process has it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def python_sigint():
    """Python's KeyboardInterrupt handler for SIGINT during the test, restored after.

    ``_thread.interrupt_main`` (a test's Ctrl-C) does nothing while SIGINT is
    ignored, as the suite inherits it when started as a background job (see
    default_sigint): clean-clone CI started with ``nohup bash .ci/run &`` failed
    the Ctrl-C tests so (DID NOT RAISE KeyboardInterrupt).
    """
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def load_original(name, module_name=None):
    """Import the book's ``name``.py from ../shared/nielsen (the oracle for the drop-ins).

    Each call makes a fresh copy, registered in ``sys.modules`` under
    ``module_name`` (default ``nielsen_<name>``), where network2.load looks its
    cost classes up: a test that changes its copy loads it under a name of its
    own, so that another file's copy keeps finding its own classes whatever
    the order the files run in.
    """
    path = NIELSEN / f"{name}.py"
    require_shared(path)
    spec = importlib.util.spec_from_file_location(module_name or f"nielsen_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # network2.load looks its cost up there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # its docstrings' escapes
        spec.loader.exec_module(module)
    return module
