"""Entry point for ``python -m bench.tiny_gguf``."""

import sys

from bench.tiny_gguf.model import main

sys.exit(main())
