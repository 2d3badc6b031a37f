"""``python -m titanicml``: the command line."""

import sys

from titanicml.cli import main

sys.exit(main())
