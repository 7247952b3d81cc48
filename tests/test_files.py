"""The Files API through the Anthropic Python SDK: upload → a message naming the file (sent to Gemini as
fileData of its own Files API copy, uploaded once per Gemini key) → delete; the per-key bound; a foreign or
deleted file_id; a file in a batch request; a Gemini copy that expired is uploaded again."""
from __future__ import annotations

import anthropic
import pytest

from tests.teams import ADMIN, keys_file

BETA = ["files-api-2025-04-14"]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
MODEL = "gemini-2.5-flash"


@pytest.fixture
def make_proxy(make_proxy, tmp_path):
    """Proxies that keep uploads in the test's directory."""
    return lambda **extra: make_proxy(**{"FILES_DIR": str(tmp_path / "files"), **extra})


def client(proxy, key: str = "sk-any") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0)


def ask(sdk: anthropic.Anthropic, file_id: str, kind: str = "document"):
    return sdk.beta.messages.create(model=MODEL, max_tokens=50, betas=BETA, messages=[{"role": "user", "content": [
        {"type": kind, "source": {"type": "file", "file_id": file_id}}, {"type": "text", "text": "Summarise."}]}])


def file_parts(record: dict) -> list[dict]:
    return [part["fileData"] for turn in record["normalized"]["contents"] for part in turn["parts"]
            if "fileData" in part]


def test_upload_then_message_then_delete(make_proxy, gemini, tmp_path):
    proxy = make_proxy(FILES_DIR=str(tmp_path / "files"))
    sdk = client(proxy)
    uploaded = sdk.beta.files.upload(file=("report.pdf", PDF, "application/pdf"), betas=BETA)
    assert (uploaded.filename, uploaded.mime_type, uploaded.size_bytes, uploaded.type) == (
        "report.pdf", "application/pdf", len(PDF), "file")
    assert (tmp_path / "files" / uploaded.id).read_bytes() == PDF
    assert [f.id for f in sdk.beta.files.list(betas=BETA)] == [uploaded.id]
    assert sdk.beta.files.retrieve_metadata(uploaded.id, betas=BETA).size_bytes == len(PDF)
    with pytest.raises(anthropic.BadRequestError, match="not downloadable"):
        sdk.beta.files.download(uploaded.id, betas=BETA)
    for _ in range(2):
        assert ask(sdk, uploaded.id).content[0].text == "Hello from the fake Gemini."
    uploads = [r for r in gemini.requests if r["action"] == "upload"]
    assert len(uploads) == 2  # start + finalize, once: the second message reuses Gemini's copy
    [stored] = gemini.gemini_files.values()
    assert stored["data"] == PDF and stored["mime"] == "application/pdf"
    calls = [r for r in gemini.requests if r["action"] == "streamGenerateContent"]
    assert [file_parts(r) for r in calls] == [[{"fileUri": next(iter(_uris(gemini))), "mimeType": "application/pdf"}]] * 2
    assert sdk.beta.files.delete(uploaded.id, betas=BETA).id == uploaded.id
    assert not gemini.gemini_files and not (tmp_path / "files" / uploaded.id).exists()
    with pytest.raises(anthropic.BadRequestError, match=f"File '{uploaded.id}' not found"):
        ask(sdk, uploaded.id)
    with pytest.raises(anthropic.NotFoundError, match=uploaded.id):
        sdk.beta.files.retrieve_metadata(uploaded.id, betas=BETA)


def _uris(gemini) -> list[str]:
    return [f"https://generativelanguage.googleapis.com/v1beta/files/{file_id}" for file_id in gemini.gemini_files]


def test_a_gemini_copy_near_its_expiry_is_uploaded_again(make_proxy, gemini):
    gemini.file_lifetime_s = 1800  # Gemini's copies expire within the hour: each use uploads a new one
    sdk = client(make_proxy())
    uploaded = sdk.beta.files.upload(file=("cat.png", b"\x89PNG\r\n\x1a\n", "image/png"), betas=BETA)
    ask(sdk, uploaded.id, "image")
    ask(sdk, uploaded.id, "image")
    first, second = _uris(gemini)
    calls = [r for r in gemini.requests if r["action"] == "streamGenerateContent"]
    assert [file_parts(r)[0]["fileUri"] for r in calls] == [first, second]


def test_files_belong_to_their_key_and_are_bounded(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={}, bob={})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path), FILES_MAX_BYTES_PER_KEY="100")
    alice, bob = client(proxy, secrets["alice"]), client(proxy, secrets["bob"])
    mine = alice.beta.files.upload(file=("a.txt", b"a" * 60, "text/plain"), betas=BETA)
    with pytest.raises(anthropic.APIStatusError, match="FILES_MAX_BYTES_PER_KEY") as caught:
        alice.beta.files.upload(file=("b.txt", b"b" * 60, "text/plain"), betas=BETA)
    assert caught.value.status_code == 413
    assert bob.beta.files.upload(file=("b.txt", b"b" * 60, "text/plain"), betas=BETA).size_bytes == 60
    assert [f.id for f in bob.beta.files.list(betas=BETA)] != [mine.id]
    with pytest.raises(anthropic.NotFoundError):
        bob.beta.files.delete(mine.id, betas=BETA)
    with pytest.raises(anthropic.BadRequestError, match=mine.id):
        ask(bob, mine.id)
    assert {f.id for f in client(proxy, ADMIN).beta.files.list(betas=BETA)} >= {mine.id}


def test_a_file_in_a_batch_request(make_proxy, gemini):
    sdk = client(make_proxy())
    uploaded = sdk.beta.files.upload(file=("report.pdf", PDF, "application/pdf"), betas=BETA)
    content = [{"type": "document", "source": {"type": "file", "file_id": uploaded.id}}, {"type": "text", "text": "?"}]
    batch = sdk.messages.batches.create(requests=[
        {"custom_id": "with-file", "params": {"model": MODEL, "max_tokens": 50,
                                              "messages": [{"role": "user", "content": content}]}},
        {"custom_id": "missing", "params": {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "file_gone"}}]}]}}])
    created = next(r for r in gemini.requests if r["action"] == "batchGenerateContent")
    [inlined] = created["normalized"]["batch"]["inputConfig"]["requests"]["requests"]  # the missing file: errored
    assert file_parts({"normalized": inlined["request"]}) == [{"fileUri": _uris(gemini)[0], "mimeType": "application/pdf"}]
    for _ in range(5):
        if sdk.messages.batches.retrieve(batch.id).processing_status == "ended":
            break
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert results["with-file"].type == "succeeded"
    assert results["missing"].type == "errored" and "file_gone" in results["missing"].error.error.message


def test_the_fake_keeps_files_and_batches_per_key(gemini):
    import httpx
    gemini.quotas.keys = frozenset({"key-a", "key-b"})
    start = httpx.post(gemini.root_url + "/upload/v1beta/files", json={"file": {"displayName": "x"}}, headers={
        "x-goog-api-key": "key-a", "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": "3", "X-Goog-Upload-Header-Content-Type": "text/plain"})
    done = httpx.post(start.headers["X-Goog-Upload-URL"], content=b"abc", headers={
        "x-goog-api-key": "key-a", "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})
    uploaded = done.json()["file"]
    assert (uploaded["sizeBytes"], uploaded["state"]) == ("3", "ACTIVE")
    assert httpx.get(f"{gemini.base_url}/{uploaded['name']}", headers={"x-goog-api-key": "key-b"}).status_code == 403
    request = {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": uploaded["uri"], "mimeType": "text/plain"}}]}]}
    for key, status in (("key-b", 403), ("key-a", 200)):
        answer = httpx.post(f"{gemini.base_url}/models/{MODEL}:generateContent", json=request,
                            headers={"x-goog-api-key": key})
        assert answer.status_code == status, answer.text
    batch = {"batch": {"displayName": "b", "inputConfig": {"requests": {"requests": [{"request": request}]}}}}
    refused = httpx.post(f"{gemini.base_url}/models/{MODEL}:batchGenerateContent", json=batch,
                         headers={"x-goog-api-key": "key-b"})
    assert refused.status_code == 403 and "requests[0].request" in refused.text
    created = httpx.post(f"{gemini.base_url}/models/{MODEL}:batchGenerateContent", json=batch,
                         headers={"x-goog-api-key": "key-a"}).json()
    assert created["metadata"]["state"] == "BATCH_STATE_PENDING"
    assert httpx.get(f"{gemini.base_url}/{created['name']}", headers={"x-goog-api-key": "key-b"}).status_code == 403
    unnamed = {"batch": {"inputConfig": batch["batch"]["inputConfig"]}}
    assert httpx.post(f"{gemini.base_url}/models/{MODEL}:batchGenerateContent", json=unnamed,
                      headers={"x-goog-api-key": "key-a"}).status_code == 400
