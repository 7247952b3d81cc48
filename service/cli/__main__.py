"""``python -m service.cli``: the same as ``gemini-proxy``."""
import sys

from . import main

sys.exit(main())
