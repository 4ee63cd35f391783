"""``python -m sf_train`` runs the same command group as ``sf train``."""

import sys

from sf_train.cli import main

if __name__ == "__main__":
    sys.exit(main())
