"""Entry point for ``python -m swapgate.bench.tiny_gguf``."""

import sys

from swapgate.bench.tiny_gguf.model import main

sys.exit(main())
