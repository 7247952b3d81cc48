"""Client keys from PROXY_KEYS_FILE: made by the project's command, hashed in the file, re-read when the file
changes, limited to models; PROXY_API_KEY stays the admin key; no secret reaches the ledger, logs or metrics."""
from __future__ import annotations

import logging
import subprocess
import sys

import httpx
import pytest
import yaml

from service.app import create_app
from service.config import load_settings
from tests.conftest import proxy_env
from tests.servers import ROOT
from tests.teams import ADMIN, keys_file, ledger_rows, post


def test_the_add_command_prints_the_secret_once_and_keeps_only_its_hash(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("# the team's keys\nkeys:\n  # the first one\n  - name: alice\n    key_sha256: " + "a" * 64 + "\n")
    made = subprocess.run([sys.executable, "-m", "service.teams.keys", "add", "bob", "--rpm", "5", "--model", "gemini-2.5-*"],
                          cwd=ROOT, env={"PROXY_KEYS_FILE": str(path), "PATH": ""}, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("sk-proxy-") and len(secret) > 40 and secret not in made.stderr
    text = path.read_text()
    assert secret not in text and "# the first one" in text  # appended: comments stay
    entry = yaml.safe_load(text)["keys"][1]
    assert entry["name"] == "bob" and entry["rpm"] == 5 and entry["models"] == ["gemini-2.5-*"]
    again = subprocess.run([sys.executable, "-m", "service.teams.keys", "add", "bob", "--file", str(path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already" in again.stderr and yaml.safe_load(path.read_text()) == yaml.safe_load(text)


def test_client_keys_and_the_admin_key_are_let_in_and_nothing_else(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={}, bob={})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path))
    assert [post(proxy, key).status_code for key in (ADMIN, secrets["alice"], secrets["bob"])] == [200] * 3
    bearer = httpx.post(proxy.url + "/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 5,
                        "messages": [{"role": "user", "content": "hi"}]},
                        headers={"authorization": f"Bearer {secrets['bob']}"})
    assert bearer.status_code == 200
    for wrong in ("", secrets["alice"][:-1], yaml.safe_load(path.read_text())["keys"][0]["key_sha256"]):
        answer = post(proxy, wrong)
        assert answer.status_code == 401 and answer.json()["error"]["type"] == "authentication_error"


def test_a_keys_file_without_an_admin_key_still_requires_a_key(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={})
    proxy = make_proxy(PROXY_KEYS_FILE=str(path))
    assert post(proxy, secrets["alice"]).status_code == 200
    assert post(proxy, "anything-at-all").status_code == 401


def test_a_key_removed_from_the_file_stops_working_without_a_restart(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={}, bob={})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path))
    assert post(proxy, secrets["bob"]).status_code == 200
    document = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({"keys": [k for k in document["keys"] if k["name"] != "bob"]}))
    assert post(proxy, secrets["bob"]).status_code == 401
    carol = keys_file(path, carol={})["carol"]  # and one added while it runs works at once
    assert post(proxy, carol).status_code == 200 and post(proxy, secrets["alice"]).status_code == 200
    path.write_text("keys: [{name: admin, key: not-valid}]\n")  # broken: the keys read before stay
    assert post(proxy, carol).status_code == 200 and post(proxy, ADMIN).status_code == 200


def test_a_plain_key_is_accepted_with_a_warning(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - name: local\n    key: local-key-0123456789\n")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("proxy.keys").addHandler(handler)
    try:
        proxy = make_proxy(PROXY_KEYS_FILE=str(path))
    finally:
        logging.getLogger("proxy.keys").removeHandler(handler)
    assert any("plain text" in r.getMessage() and "local-key" not in r.getMessage() for r in records)
    assert post(proxy, "local-key-0123456789").status_code == 200


@pytest.mark.parametrize("text, fragment", [
    ("keys:\n  - name: alice\n", "is not valid under any of the given schemas"),
    ("keys:\n  - {name: alice, key_sha256: abc}\n", "does not match"),
    ("keys:\n  - {name: admin, key: admin-0123456789abcdef}\n", "should not be valid"),
    ("keys:\n  - {name: a, key: k-0123456789abcdef}\n  - {name: a, key: k-0123456789abcdeg}\n", "used twice"),
    ("keys:\n  - {name: a, key: k-0123456789abcdef, rpm: 0}\n", "less than the minimum"),
])
def test_a_broken_keys_file_stops_start_up_naming_the_problem(tmp_path, fake, text, fragment):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=fragment):
        create_app(load_settings(proxy_env(fake, PROXY_KEYS_FILE=str(path)), env_file=None))


def test_a_key_limited_to_models_gets_a_403_for_others(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, flash={"models": ["claude-haiku-*", "gemini/gemini-2.5-flash"]})
    proxy = make_proxy(PROXY_KEYS_FILE=str(path), SMALL_MODEL="gemini-2.5-flash")
    assert post(proxy, secrets["flash"], model="claude-haiku-4-5").status_code == 200
    assert post(proxy, secrets["flash"], model="gemini-2.5-flash", stream=True).status_code == 200
    refused = post(proxy, secrets["flash"], model="claude-opus-4-1")
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    assert "claude-opus-4-1" in refused.json()["error"]["message"]
    counted = httpx.post(proxy.url + "/v1/messages/count_tokens", headers={"x-api-key": secrets["flash"]},
                         json={"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]})
    assert counted.status_code == 403


def test_no_secret_reaches_the_ledger_the_log_or_the_metrics(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={"rpm": 1})
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("proxy").addHandler(handler)
    try:
        proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path), DATABASE_URL=url, LOG_LEVEL="INFO")
        assert [post(proxy, secrets["alice"], stream=s).status_code for s in (False, True)] == [200, 429]
        assert post(proxy, secrets["alice"] + "x").status_code == 401
        exposition = httpx.get(proxy.url + "/metrics", headers={"x-api-key": ADMIN}).text
        proxy.stop()
    finally:
        logging.getLogger("proxy").removeHandler(handler)
    rows = ledger_rows(url)
    assert {r["key_name"] for r in rows} == {"alice"} and len(rows) == 2
    assert sum('"key": "alice"' in line for line in lines) == 2  # the access log names the key
    for secret in (*secrets.values(), ADMIN, "test-gemini-key"):
        assert secret not in repr(rows) and secret not in exposition and not any(secret in line for line in lines)
    assert 'key="alice"' in exposition
