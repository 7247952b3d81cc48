"""Reload without restart: SIGHUP to ``gemini-proxy serve`` (two workers) makes each worker re-read spec/; a
broken edit keeps the tables in use; a stream that crosses the reload ends as it began."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY
from tests.servers import ROOT, free_port

NEW_MODEL = "gemini-9-reloaded"
ENTRY = (f"  {NEW_MODEL}:\n    {{max_output_tokens: 8192, context_window: 32768, thinking: none, "
         "sampling_params: true, structured_output_with_tools: true}\n")


@pytest.fixture
def served(tmp_path, fake):
    """``gemini-proxy serve --workers 2`` on its own copy of spec/, its log in a file."""
    spec = tmp_path / "spec"
    shutil.copytree(ROOT / "spec", spec)
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "GEMINI_API_KEY": TEST_KEY, "GEMINI_API_BASE": fake.base_url, "SPEC_DIR": str(spec),
           "DATABASE_URL": "off", "LOG_LEVEL": "WARNING", "XDG_RUNTIME_DIR": str(tmp_path)}
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers",
                                    "2"], env=env, cwd=ROOT, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while not _answers(url):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)  # polling the start-up, not synchronising on it
    yield {"url": url, "spec": spec, "process": process, "log": log}
    process.send_signal(signal.SIGTERM)
    process.wait(60)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _statuses(url: str, count: int = 20) -> set[int]:
    """Statuses of ``count`` lookups of the new model, each on a new connection (so both workers answer)."""
    return {httpx.get(f"{url}/v1/models/{NEW_MODEL}", headers={"connection": "close"}).status_code
            for _ in range(count)}


def _until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)  # polling for the workers' reload, not synchronising on it
    return False


def _add_model(spec: Path) -> None:
    models = spec / "models.yaml"
    models.write_text(models.read_text().replace("\nmodels:\n", "\nmodels:\n" + ENTRY, 1))


def test_a_new_model_appears_after_sighup_and_a_broken_edit_keeps_the_tables(served):
    assert _statuses(served["url"], 4) == {404}
    _add_model(served["spec"])
    reloaded = subprocess.run([sys.executable, "-m", "service.cli", "reload", "--port", served["url"].rpartition(":")[2]],
                              env={**os.environ, "XDG_RUNTIME_DIR": str(served["spec"].parent)}, capture_output=True,
                              text=True, timeout=60)
    assert reloaded.returncode == 0, reloaded.stderr
    assert _until(lambda: _statuses(served["url"]) == {200}), served["log"].read_text()
    assert served["process"].poll() is None  # reloaded, not restarted
    (served["spec"] / "models.yaml").write_text("models: [this is: not: the table\n")
    served["process"].send_signal(signal.SIGHUP)
    assert _until(lambda: served["log"].read_text().count("the tables in use are kept") == 2), \
        served["log"].read_text()
    assert "models.yaml" in served["log"].read_text()
    assert _statuses(served["url"]) == {200}


def test_a_stream_across_the_reload_completes(served, gemini):
    gemini.enqueue({"text": "one two three four five six", "text_chunks": 6, "chunk_delay_s": 0.4})
    body = {"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "count"}]}
    started, received = threading.Event(), []

    def stream() -> None:
        with httpx.stream("POST", served["url"] + "/v1/messages", json=body, timeout=60) as response:
            for line in response.iter_lines():
                received.append(line)
                if "content_block_delta" in line:
                    started.set()
        started.set()

    reader = threading.Thread(target=stream)
    reader.start()
    assert started.wait(60)
    _add_model(served["spec"])
    served["process"].send_signal(signal.SIGHUP)
    reader.join(60)
    events = [json.loads(line[6:])["type"] for line in received if line.startswith("data: ")]
    assert events[-1] == "message_stop" and "error" not in events
    text = "".join(json.loads(line[6:])["delta"].get("text", "") for line in received
                   if line.startswith("data: ") and "text_delta" in line)
    assert text == "one two three four five six"
    assert _until(lambda: _statuses(served["url"]) == {200})
