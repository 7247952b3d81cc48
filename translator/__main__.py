"""``python -m translator --write-schemas``: write ``spec/schemas/*.schema.json`` from the table models.

Without ``--write-schemas`` it only checks that the files are up to date (exit 1 if not).
"""
from __future__ import annotations

import argparse
import sys

from . import context
from .spec import DEFAULT_SPEC_DIR
from .tables import TABLE_MODELS, schema_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m translator", description=__doc__.splitlines()[0])
    parser.add_argument("--write-schemas", action="store_true", help="write the schema files (else only check them)")
    args = parser.parse_args(argv)
    stale = []
    texts = {name: schema_text(name) for name in TABLE_MODELS} | {context.NAME: context.schema_text()}
    for name, text in texts.items():
        path = DEFAULT_SPEC_DIR / "schemas" / f"{name}.schema.json"
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.write_schemas:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        else:
            stale.append(str(path))
    if stale:
        print("out of date (run python -m translator --write-schemas):\n  " + "\n  ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
