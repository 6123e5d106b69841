"""``python -m cbp``: the ``cbp`` command (see :mod:`cbp.cli`)."""
import sys

from cbp.cli import main

if __name__ == "__main__":
    sys.exit(main())
