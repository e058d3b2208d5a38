"""`python -m swapgate.proxy` runs the `swapgate` command."""

import sys

from swapgate.proxy.cli import main

sys.exit(main())
