"""Entry point for ``python -m bench.fake_upstream``."""

import sys

from bench.fake_upstream.server import main

sys.exit(main())
