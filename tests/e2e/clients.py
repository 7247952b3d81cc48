"""Which releases of the real clients the end-to-end suite runs, and installing them.

Pinned (the default, what CI runs): ``tests/e2e/package.json`` + ``package-lock.json`` for Claude Code
and the TypeScript SDK, installed with ``npm ci`` into ``<repo>/.cache/e2e-node``; pyproject.toml's
``anthropic==`` for the Python SDK. ``E2E_CLIENTS=latest``: the newest release of each npm package
(``npm view``), installed into ``<repo>/.cache/e2e-node-latest`` with exact versions; the Python SDK is
the one the interpreter has (``tests/e2e/latest.py`` runs pytest with the newest one).

Claude Code's npm package is a wrapper whose postinstall links the native binary of the platform
package (``@anthropic-ai/claude-code-linux-x64``) into place; it runs on any Node, although releases
from 2.1.198 on declare ``engines.node >= 22`` (npm only warns, EBADENGINE).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLAUDE_CODE, TS_SDK, PY_SDK = "@anthropic-ai/claude-code", "@anthropic-ai/sdk", "anthropic"
INSTALL_TIMEOUT_S = 600
_PY_PIN = re.compile(r'"anthropic==([0-9][^"]*)"')


class InstallError(Exception):
    """The clients could not be installed (the e2e tests are skipped with this message)."""


def mode() -> str:
    value = os.environ.get("E2E_CLIENTS", "pinned")
    if value not in ("pinned", "latest"):
        raise InstallError(f"E2E_CLIENTS={value!r}: expected 'pinned' (the default) or 'latest'")
    return value


def pinned_npm() -> dict[str, str]:
    return json.loads((HERE / "package.json").read_text())["dependencies"]


def pinned_python() -> str:
    match = _PY_PIN.search((REPO / "pyproject.toml").read_text())
    if not match:
        raise InstallError('pyproject.toml has no exact "anthropic==X.Y.Z" pin in its dev group')
    return match.group(1)


def _run(command: list[str], cwd: Path, what: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        raise InstallError(f"{what} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-1500:]}")
    return done.stdout


def newest_npm(npm: str, package: str) -> str:
    return _run([npm, "view", package, "version"], REPO, f"npm view {package} version").strip()


def newest_python() -> str:
    """The newest ``anthropic`` on the package index for this project's Python, as uv resolves it."""
    out = _run(["uv", "pip", "compile", "-", "--no-header", "--no-annotate", "--no-deps", "--python-version", "3.11",
                "--refresh-package", PY_SDK, "--quiet"], REPO, "uv pip compile anthropic", stdin=PY_SDK + "\n")
    match = re.search(r"(?m)^anthropic==(\S+)$", out)
    if not match:
        raise InstallError(f"uv pip compile named no anthropic release: {out[-800:]}")
    return match.group(1)


def node_dir() -> Path:
    return REPO / ".cache" / ("e2e-node-latest" if mode() == "latest" else "e2e-node")


def _manifest(npm: str) -> tuple[dict, bytes | None]:
    """The package.json to install (and the lockfile, pinned only): the pins, or every package at its newest."""
    manifest = json.loads((HERE / "package.json").read_text())
    if mode() == "pinned":
        return manifest, (HERE / "package-lock.json").read_bytes()
    manifest["dependencies"] = {name: newest_npm(npm, name) for name in manifest["dependencies"]}
    return manifest, None


def _installed(modules: Path, manifest: dict) -> bool:
    """Every package of the manifest is in ``modules`` at its version, and Claude Code's binary is linked."""
    for name, version in manifest["dependencies"].items():
        meta = modules / name / "package.json"
        if not meta.is_file() or json.loads(meta.read_text()).get("version") != version:
            return False
    return (modules / ".bin" / "claude").exists()


def install(npm: str) -> Path:
    """``<node dir>/node_modules`` holding the clients of this mode, installed unless they already are."""
    target = node_dir()
    manifest, lock = _manifest(npm)
    text = json.dumps(manifest, indent=2) + "\n"
    stamp = hashlib.sha256(text.encode() + (lock or b"")).hexdigest()
    stamp_file = target / ".installed"
    if stamp_file.is_file() and stamp_file.read_text() == stamp and _installed(target / "node_modules", manifest):
        return target / "node_modules"
    target.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    (target / "package.json").write_text(text)
    if lock is None:
        (target / "package-lock.json").unlink(missing_ok=True)
        command = [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"]
    else:
        (target / "package-lock.json").write_bytes(lock)
        command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    _run(command, target, f"`{' '.join(command[:2])}` in {target}")
    if not _installed(target / "node_modules", manifest):
        raise InstallError(f"{target}/node_modules lacks {manifest['dependencies']} or Claude Code's binary "
                           "after the install (postinstall skipped? npm ignore-scripts?)")
    stamp_file.write_text(stamp)
    return target / "node_modules"


def installed_versions(modules: Path) -> dict[str, str]:
    """What the npm packages in ``modules`` are (read from their package.json)."""
    return {name: json.loads((modules / name / "package.json").read_text())["version"] for name in (CLAUDE_CODE, TS_SDK)}
