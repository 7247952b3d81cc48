"""The end-to-end suite against the newest Claude Code, TypeScript SDK and Python SDK; ``--pin`` moves the pins.

    uv run python -m tests.e2e.latest [--pin] [pytest arguments]

Runs ``pytest -p no:cacheprovider tests/e2e`` (both markers: the Python SDK tests are not ``e2e``) with
``E2E_CLIENTS=latest`` (conftest installs the newest npm releases into .cache/e2e-node-latest) under
``uv run --with anthropic==<newest>``, then prints each client's newest version next to its pin. With
``--pin`` and a green run it writes those versions into tests/e2e/package.json (+ package-lock.json),
pyproject.toml (+ uv.lock) and the README's "Use with Claude Code" section: review ``git diff``, commit.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e import clients

README_LABELS = {  # how the README's "Use with Claude Code" section names each pinned version
    clients.CLAUDE_CODE: ("Claude Code ", "@anthropic-ai/claude-code@"),
    clients.TS_SDK: ("`@anthropic-ai/sdk` ",),
    clients.PY_SDK: ("`anthropic` ",),
}


def tested_versions(python_sdk: str) -> dict[str, str]:
    """The npm versions conftest installed for the run (its package.json), and the Python SDK's."""
    manifest = json.loads((clients.REPO / ".cache" / "e2e-node-latest" / "package.json").read_text())
    return {**manifest["dependencies"], clients.PY_SDK: python_sdk}


def pinned_versions() -> dict[str, str]:
    return {**clients.pinned_npm(), clients.PY_SDK: clients.pinned_python()}


def rewrite_readme(text: str, old: dict[str, str], new: dict[str, str]) -> str:
    """``text`` with every pinned version, as README_LABELS spell it, moved from ``old`` to ``new``."""
    for name, labels in README_LABELS.items():
        for label in labels:
            text = text.replace(label + old[name], label + new[name])
    return text


def move_pins(new: dict[str, str]) -> None:
    old, repo, here = pinned_versions(), clients.REPO, clients.HERE
    manifest = json.loads((here / "package.json").read_text())
    manifest["dependencies"] = {name: new[name] for name in manifest["dependencies"]}
    (here / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with tempfile.TemporaryDirectory() as scratch:  # the lockfile, without installing anything
        shutil.copyfile(here / "package.json", Path(scratch) / "package.json")
        subprocess.run(["npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=scratch, check=True)
        shutil.copyfile(Path(scratch) / "package-lock.json", here / "package-lock.json")
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(re.sub(r'"anthropic==[^"]+"', f'"anthropic=={new[clients.PY_SDK]}"', pyproject.read_text()))
    subprocess.run(["uv", "lock", "--upgrade-package", clients.PY_SDK], cwd=repo, check=True)
    readme = repo / "README.md"
    readme.write_text(rewrite_readme(readme.read_text(), old, new))


def main(argv: list[str]) -> int:
    pin = "--pin" in argv
    python_sdk = clients.newest_python()
    command = ["uv", "run", "--with", f"anthropic=={python_sdk}", "pytest", "-q", "-p", "no:cacheprovider",
               "tests/e2e", *(a for a in argv if a != "--pin")]
    code = subprocess.call(command, cwd=clients.REPO, env={**os.environ, "E2E_CLIENTS": "latest"})
    new, old = tested_versions(python_sdk), pinned_versions()
    print("\nnewest releases (pinned):")
    for name, version in new.items():
        print(f"  {name} {version}" + ("" if old[name] == version else f"  (pinned {old[name]})"))
    if pin and code == 0 and new != old:
        move_pins(new)
        print("pins moved: review `git diff`, then commit")
    elif pin and code != 0:
        print(f"pytest exited {code}: pins left as they are")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
