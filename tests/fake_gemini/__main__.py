"""``python -m tests.fake_gemini``: the fake Gemini in the foreground (options: ``--help``)."""

import sys

from .routes import main

if __name__ == "__main__":
    main(sys.argv[1:])
