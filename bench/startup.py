"""Start-up (issue 28): from launching the README's command to a 200 on ``/health`` (liveness), on
``/ready`` (readiness) and on a first real ``/v1/messages`` against the fake Gemini; and where the
import time goes (``python -X importtime``). Not a timed test: figures for bench/README.md.

    uv run python -m bench.startup [--rounds 3]

Compares ``service.app:app`` (the app imported before the worker serves, as before) with
``service.boot:app`` (served at once, the app imported behind it), each with the bytecode cache
warm (``uv sync`` compiles it: ``[tool.uv] compile-bytecode``) and with ``PYTHONDONTWRITEBYTECODE``
and an empty cache (a container that never wrote one).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.common import ROOT, SMALL_ANSWER, FakeProcess, ProxyProcess, _env, first_ok, summary, table, write_json

MESSAGE = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 50,
                      "messages": [{"role": "user", "content": "hi"}]}).encode()
VARIANTS = {"app": "service.app:app", "boot": "service.boot:app"}


def one_start(fake: FakeProcess, app: str, cold: bool) -> dict[str, float | None]:
    """Seconds from launch to the first 200 of /health, /ready and /v1/messages."""
    extra: dict[str, str] = {"DATABASE_URL": "off"}
    cache = None
    if cold:
        cache = tempfile.mkdtemp(prefix="pycache-cold-")
        extra.update(PYTHONPYCACHEPREFIX=cache, PYTHONDONTWRITEBYTECODE="1")
    proxy = ProxyProcess(fake.base_url, name="startup", app=app, extra_env=extra)
    try:
        health = first_ok(proxy.port, timeout=180)
        ready = first_ok(proxy.port, path="/ready", timeout=180)
        message = first_ok(proxy.port, "POST", "/v1/messages", MESSAGE, {"content-type": "application/json"},
                           timeout=180)
        return {name: None if at is None else at - proxy.launched
                for name, at in (("health", health), ("ready", ready), ("message", message))}
    finally:
        proxy.stop()
        if cache:
            shutil.rmtree(cache, ignore_errors=True)


def import_profile(module: str) -> dict[str, float]:
    """Cumulative import seconds of the heaviest packages ``module`` pulls in (``-X importtime``)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT,
                         env=_env({"DATABASE_URL": "off"}), capture_output=True, text=True, timeout=300)
    totals: dict[str, float] = {}
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        if cumulative.isdigit() and name.split(".")[0] in ("litellm", "sqlalchemy", "alembic", "redis", "quart",
                                                             "translator", "service", "aiohttp", "hypercorn"):
            top = name if name.startswith("service") else name.split(".")[0]
            totals[top] = max(totals.get(top, 0.0), int(cumulative) / 1e6)
    return dict(sorted(totals.items(), key=lambda item: -item[1])[:12])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    fake = FakeProcess(SMALL_ANSWER)
    results: dict[str, Any] = {"imports": {m: import_profile(m) for m in ("service.app", "service.boot")}}
    try:
        one_start(fake, VARIANTS["app"], cold=False)  # writes the bytecode cache the warm rounds use
        rows = []
        for cold in (False, True):
            for name, app in VARIANTS.items():
                runs = [one_start(fake, app, cold) for _ in range(args.rounds)]
                label = f"{name} {'cold' if cold else 'warm'}"
                results[label] = {step: summary([r[step] for r in runs if r[step] is not None], scale=1.0)
                                  for step in ("health", "ready", "message")}
                rows.append([label] + [f"{results[label][step]['median']:.2f}"
                                       for step in ("health", "ready", "message")])
    finally:
        fake.stop()
    print(table(["variant", "/health s", "/ready s", "first message s"], rows, title="start-up, median"))
    print(table(["module", "cumulative import s"],
                [[m, f"{s:.2f}"] for m, s in results["imports"]["service.app"].items()], title="import service.app"))
    write_json("startup.json", results)
    return results


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
