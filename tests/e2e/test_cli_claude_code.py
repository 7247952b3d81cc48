"""``gemini-proxy claude`` with the real Claude Code: it starts a proxy for the session, Claude Code's answer
comes from the fake Gemini, and the proxy is gone afterwards."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY
from tests.e2e.conftest import CLAUDE_TIMEOUT_S, claude_env

pytestmark = pytest.mark.e2e


def test_gemini_proxy_claude_answers_from_gemini_and_stops_its_proxy(node_modules: Path, home: Path,
                                                                      project: Path, gemini, tmp_path):
    env = claude_env(home, "")
    del env["ANTHROPIC_BASE_URL"], env["ANTHROPIC_API_KEY"]
    env.update(PATH=f"{node_modules / '.bin'}:{env['PATH']}", GEMINI_API_KEY=TEST_KEY, GEMINI_API_BASE=gemini.base_url,
               GEMINI_PROXY_URL="http://127.0.0.1:9", DATABASE_URL=f"sqlite:///{tmp_path / 'usage.db'}",
               TMPDIR=str(tmp_path), ENV_FILE="off", LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "-m", "service.cli", "claude", "-p", "say hello", "--output-format", "json"],
                          env=env, cwd=project, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=CLAUDE_TIMEOUT_S + 120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["result"] == "Hello from the fake Gemini."
    asked = [r for r in gemini.requests if r["action"] in ("generateContent", "streamGenerateContent")]
    assert asked, gemini.requests
    [log] = tmp_path.glob("gemini-proxy-claude-*.log")
    port = log.name.removeprefix("gemini-proxy-claude-").removesuffix(".log")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
