"""``gemini-proxy`` as a user gets it: ``uv tool install`` of the checkout into a scratch tool directory, run
from a folder that is not the checkout, against the fake Gemini; Claude Code replaced by a stand-in that
records its arguments and environment and calls the proxy (tests/e2e has the real one)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY
from tests.servers import ROOT

UV = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
pytestmark = pytest.mark.skipif(not Path(UV).exists(), reason="uv is not installed")

STAND_IN = f"""#!{sys.executable}
import json, os, signal, sys, time, urllib.request
record = os.environ["STAND_IN_RECORD"]
def interrupted(signum, frame):
    open(record + ".signal", "w").write(signal.Signals(signum).name)
    sys.exit(130)
signal.signal(signal.SIGINT, interrupted)
signal.signal(signal.SIGTERM, interrupted)
body = json.dumps({{"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{{"role": "user", "content": sys.argv[-1]}}]}})
request = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", body.encode(),
                                 {{"x-api-key": os.environ["ANTHROPIC_API_KEY"], "content-type": "application/json"}})
answer = json.load(urllib.request.urlopen(request, timeout=60))
json.dump({{"argv": sys.argv[1:], "env": dict(os.environ), "answer": answer}}, open(record, "w"))
if "--wait" in sys.argv:
    while True:
        time.sleep(0.1)  # until the test's SIGINT
print(answer["content"][0]["text"])
sys.exit(7)
"""


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """The ``gemini-proxy`` executable of a ``uv tool install`` of this checkout."""
    tools = tmp_path_factory.mktemp("uv-tools")
    env = {**os.environ, "UV_TOOL_DIR": str(tools / "tools"), "UV_TOOL_BIN_DIR": str(tools / "bin")}
    done = subprocess.run([UV, "tool", "install", "--quiet", str(ROOT)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tools)
    assert done.returncode == 0, done.stderr
    return tools / "bin" / "gemini-proxy"


@pytest.fixture
def elsewhere(tmp_path, installed, fake) -> dict:
    """A folder outside the checkout, a stand-in ``claude`` on PATH, and the fake Gemini's settings."""
    stand_in = tmp_path / "bin" / "claude"
    stand_in.parent.mkdir()
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_"))}
    env.update(PATH=f"{stand_in.parent}:{installed.parent}:/usr/bin:/bin", GEMINI_API_KEY=TEST_KEY,
               GEMINI_API_BASE=fake.base_url, STAND_IN_RECORD=str(tmp_path / "record.json"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'usage.db'}", GEMINI_PROXY_URL="http://127.0.0.1:9",
               XDG_RUNTIME_DIR=str(tmp_path), LOG_LEVEL="WARNING")
    work = tmp_path / "project"
    work.mkdir()
    return {"env": env, "cwd": work, "record": tmp_path / "record.json", "tool": str(installed)}


def run(where: dict, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([where["tool"], *args], env={**where["env"], **env}, cwd=where["cwd"], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("command", ["serve", "claude", "keys", "usage", "doctor", "reload", "dashboard"])
def test_every_command_has_help(elsewhere, command):
    done = run(elsewhere, command, "--help")
    assert done.returncode == 0 and "usage: gemini-proxy " + command in done.stdout


def test_serve_without_a_gemini_credential_refuses_with_one_line(elsewhere):
    done = run(elsewhere, "serve", GEMINI_API_KEY="")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "GEMINI_API_KEY" in done.stderr and "GEMINI_API_KEYS" in done.stderr


def test_serve_with_an_unreachable_database_exits_non_zero_with_one_line(elsewhere):
    done = run(elsewhere, "serve", "--port", "0", DATABASE_URL="postgresql://u:secret-pw@127.0.0.1:9/db")
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == [line for line in done.stderr.strip().splitlines()
                                                if line.startswith("gemini-proxy: start-up failed: the usage ledger")]
    assert "secret-pw" not in done.stderr


def _proxy_gone(env: dict) -> bool:
    url = env["ANTHROPIC_BASE_URL"]
    try:
        httpx.get(url + "/health", timeout=2)
    except httpx.TransportError:
        return True
    return False


def test_the_launcher_starts_a_proxy_runs_claude_and_stops_the_proxy(elsewhere):
    done = run(elsewhere, "claude", "-p", "--output-format", "json", "say hello")
    assert done.returncode == 7, done.stderr
    assert done.stdout.strip() == "Hello from the fake Gemini."
    record = json.loads(elsewhere["record"].read_text())
    assert record["argv"] == ["-p", "--output-format", "json", "say hello"]
    env = record["env"]
    assert env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:") and env["ANTHROPIC_API_KEY"]
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "1048576" and env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "65536"
    assert env["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] == "1"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and env["DISABLE_TELEMETRY"] == "1"
    assert env["ANTHROPIC_CUSTOM_MODEL_OPTION"].startswith("gemini-")
    assert record["answer"]["content"][0]["text"] == "Hello from the fake Gemini."
    assert _proxy_gone(env)
    assert not list(elsewhere["cwd"].iterdir())  # nothing written into the project


def test_the_launcher_uses_a_proxy_that_answers_and_leaves_it_running(elsewhere, proxy):
    done = run(elsewhere, "claude", "--url", proxy.url, "hello", GEMINI_PROXY_URL="")
    assert done.returncode == 7, done.stderr
    assert json.loads(elsewhere["record"].read_text())["env"]["ANTHROPIC_BASE_URL"] == proxy.url
    assert httpx.get(proxy.url + "/health").status_code == 200


def test_ctrl_c_reaches_claude_and_the_proxy_still_stops(elsewhere):
    launcher = subprocess.Popen([elsewhere["tool"], "claude", "--wait", "hello"], env=elsewhere["env"],
                                cwd=elsewhere["cwd"], start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not elsewhere["record"].exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the stand-in's first answer, not synchronising on it
    env = json.loads(elsewhere["record"].read_text())["env"]
    os.killpg(launcher.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the foreground process group
    assert launcher.wait(60) == 130, launcher.stderr.read()
    assert Path(str(elsewhere["record"]) + ".signal").read_text() == "SIGINT"
    assert _proxy_gone(env)


def test_without_claude_the_launcher_says_how_to_install_it(elsewhere):
    done = run(elsewhere, "claude", "-p", "hi", PATH=str(Path(elsewhere["tool"]).parent) + ":/usr/bin:/bin")
    assert done.returncode == 127 and "npm install -g @anthropic-ai/claude-code" in done.stderr


def test_keys_add_list_revoke(elsewhere, tmp_path):
    keys = str(tmp_path / "proxy-keys.yaml")
    added = run(elsewhere, "keys", "add", "alice", "--rpm", "5", PROXY_KEYS_FILE=keys)
    assert added.returncode == 0 and added.stdout.startswith("sk-proxy-")
    listed = run(elsewhere, "keys", "list", PROXY_KEYS_FILE=keys)
    assert listed.stdout.startswith("alice\trpm=5") and added.stdout.strip() not in Path(keys).read_text()
    assert run(elsewhere, "keys", "revoke", "alice", PROXY_KEYS_FILE=keys).returncode == 0
    assert run(elsewhere, "keys", "list", PROXY_KEYS_FILE=keys).stdout == ""
    assert run(elsewhere, "keys", "revoke", "alice", PROXY_KEYS_FILE=keys).returncode == 1


def test_uvx_runs_the_command_without_installing(tmp_path):
    done = subprocess.run([UV, "tool", "run", "--from", str(ROOT), "gemini-proxy", "keys", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "add" in done.stdout and "revoke" in done.stdout, done.stderr


def test_usage_prints_the_ledger_by_key_and_by_model(elsewhere, make_proxy, gemini, tmp_path):
    from tests.teams import keys_file, post
    secrets = keys_file(tmp_path / "keys.yaml", alice={"rpm": 1}, bob={})
    database = f"sqlite:///{tmp_path / 'team.db'}"
    proxy = make_proxy(PROXY_KEYS_FILE=str(tmp_path / "keys.yaml"), DATABASE_URL=database, LEDGER_FLUSH_SECONDS="0.1")
    assert post(proxy, secrets["alice"]).status_code == 200
    assert post(proxy, secrets["alice"], model="claude-opus-4-1").status_code == 429  # its row keeps the model
    assert post(proxy, secrets["bob"]).status_code == 200
    proxy.stop()  # every row written
    by_key = run(elsewhere, "usage", "--since", "1h", "--by", "key", "--database", database)
    lines = {line.split()[0]: line.split() for line in by_key.stdout.splitlines()[2:] if not line.startswith("-")}
    assert lines["alice"][1:5] == ["14", "0", "0", "7"] and lines["bob"][1:5] == ["14", "0", "0", "7"]
    assert lines["total"][1] == "28" and lines["total"][5] == "0.0%"
    by_model = run(elsewhere, "usage", "--since", "1h", "--by", "model", "--database", database).stdout
    assert "gemini/gemini-3.1-pro-preview" in by_model and "claude-opus-4-1" in by_model


def test_doctor_checks_the_keys_and_the_database_and_shows_no_secret(elsewhere, gemini):
    done = run(elsewhere, "doctor", GEMINI_API_KEYS="second-key-0123456789", REDIS_URL="")
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("ok   Gemini key sha256:") == 2 and "ok   database:" in done.stdout
    assert "ok   tables:" in done.stdout and "configuration: Settings(" in done.stdout
    assert TEST_KEY not in done.stdout and "second-key" not in done.stdout
    assert len([r for r in gemini.requests if r["action"] == "countTokens"]) == 2
