"""`python -m realcheck`: the same command line as the `realcheck` console script."""

import sys

from realcheck.cli import main

sys.exit(main())
