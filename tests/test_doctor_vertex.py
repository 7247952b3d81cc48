"""``gemini-proxy doctor`` on Vertex AI credentials (issue 27), in process against the fake Vertex: a
good service account, express key and project; a service account the token endpoint refuses, a
project it may not use, a bad express key, ADC without a project. A line per credential, no secret."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


from service.cli.doctor import doctor
from tests.test_vertex import EXPRESS_KEY, FLASH, account, vertex, vertex_server  # noqa: F401 - fixtures

VERTEX_VARIABLES = ("GEMINI_API_KEY", "GEMINI_API_KEYS", "VERTEXAI_API_KEY", "VERTEXAI_API_KEYS", "VERTEXAI_PROJECT",
                    "VERTEXAI_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS", "VERTEXAI_LOCATION", "PROVIDER_PREFIXES")


def run_doctor(monkeypatch, capsys, vertex, **env: str) -> tuple[int, list[str]]:
    for name in VERTEX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = {"ENV_FILE": "off", "DATABASE_URL": "off", "REDIS_URL": "", "VERTEXAI_API_BASE": vertex.root_url,
                "PROVIDER_PREFIXES": "gemini/,vertex_ai/", "BIG_MODEL": f"vertex_ai/{FLASH}", **env}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    status = doctor(argparse.Namespace())
    out = capsys.readouterr().out
    assert "PRIVATE KEY" not in out and "ya29." not in out and "0123456789" not in out
    return status, [line for line in out.splitlines() if "Vertex AI" in line]


def test_good_credentials_are_each_one_ok_line(monkeypatch, capsys, vertex):
    path = account(vertex)
    status, lines = run_doctor(monkeypatch, capsys, vertex, GOOGLE_APPLICATION_CREDENTIALS=path,
                               VERTEXAI_API_KEY=EXPRESS_KEY, VERTEXAI_LOCATION="us-central1")
    assert status == 0, lines
    assert len(lines) == 2 and all(line.startswith("ok   ") for line in lines)
    assert any(f"Vertex AI credentials {path}, project proj-a, location us-central1" in line for line in lines)
    assert any("Vertex AI express key sha256:" in line for line in lines)
    counted = [r for r in vertex.requests if r["action"] == "countTokens"]
    assert sorted(r["path"] for r in counted) == sorted([
        f"/v1/projects/proj-a/locations/us-central1/publishers/google/models/{FLASH}:countTokens",
        f"/v1/publishers/google/models/{FLASH}:countTokens"])
    assert vertex.token_requests == 1


def test_a_service_account_the_token_endpoint_refuses_fails(monkeypatch, capsys, vertex):
    path = Path(account(vertex))
    stranger = json.loads(path.read_text())
    path.write_text(json.dumps({**stranger, "client_email": "stranger@proj.iam.gserviceaccount.com"}))
    status, lines = run_doctor(monkeypatch, capsys, vertex, GOOGLE_APPLICATION_CREDENTIALS=str(path))
    assert status == 1
    (line,) = lines
    assert line.startswith(f"FAIL Vertex AI credentials {path} could not give an access token") and "invalid_client" in line
    assert not [r for r in vertex.requests if r["action"]]


def test_a_project_the_account_may_not_use_fails(monkeypatch, capsys, vertex):
    status, lines = run_doctor(monkeypatch, capsys, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex),
                               VERTEXAI_PROJECT="someone-elses")
    assert status == 1
    (line,) = lines
    assert line.startswith("FAIL ") and "project someone-elses" in line and "403" in line


def test_a_bad_express_key_fails_without_showing_it(monkeypatch, capsys, vertex):
    status, lines = run_doctor(monkeypatch, capsys, vertex, VERTEXAI_API_KEY="vertex-wrong-key-0123456789")
    assert status == 1
    (line,) = lines
    assert line.startswith("FAIL Vertex AI express key sha256:") and " 401 " in line
    assert "vertex-wrong-key" not in line


def test_a_credential_without_a_project_says_to_set_one(monkeypatch, capsys, vertex):
    path = Path(account(vertex))
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "project_id"}))
    status, lines = run_doctor(monkeypatch, capsys, vertex, GOOGLE_APPLICATION_CREDENTIALS=str(path))
    assert status == 1 and lines == [f"FAIL Vertex AI credentials {path}: an access token, but no project: "
                                     "set VERTEXAI_PROJECT"]


def test_vertex_left_out_of_provider_prefixes_is_not_checked(monkeypatch, capsys, vertex, gemini):
    status, lines = run_doctor(monkeypatch, capsys, vertex, GEMINI_API_KEY="test-key", PROVIDER_PREFIXES="gemini/",
                               VERTEXAI_API_KEY="vertex-wrong-key-0123456789", BIG_MODEL=FLASH,
                               GEMINI_API_BASE=gemini.base_url)
    assert lines == [] and not vertex.requests
