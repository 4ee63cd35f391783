"""``python -m sf_workflows`` = ``sf workflows``."""

import sys

from sf_workflows.cli import main

sys.exit(main())
