"""``python -m tokenrate`` is the ``tokenrate`` command."""

import sys

from tokenrate.cli import main

sys.exit(main())
