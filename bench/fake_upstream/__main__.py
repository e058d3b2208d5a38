"""Entry point for ``python -m swapgate.bench.fake_upstream``."""

import sys

from swapgate.bench.fake_upstream.server import main

sys.exit(main())
