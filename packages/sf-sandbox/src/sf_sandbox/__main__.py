"""``python -m sf_sandbox`` = ``sf sandbox``."""

import sys

from sf_sandbox.cli import main

sys.exit(main(["sandbox", *sys.argv[1:]]))
