"""`python -m hpsearch VERB ...`: the `hpsearch` command, for a Python whose scripts folder is not on PATH."""

import sys

from hpsearch.cli import main

sys.exit(main())
