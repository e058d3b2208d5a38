"""`python -m proxy` runs the `swapgate` command."""

import sys

from proxy.cli import main

sys.exit(main())
