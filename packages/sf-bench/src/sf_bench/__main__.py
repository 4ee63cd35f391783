"""``python -m sf_bench …`` runs the same command group as ``sf bench …``."""

import sys

from sf_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
