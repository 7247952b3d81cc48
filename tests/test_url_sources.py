"""Image and document URL sources through the real Anthropic Python SDK, the proxy and the strict fake
Gemini: Gemini gets fileData with the URL, and nothing in the proxy ever opens the address."""
from __future__ import annotations

import socket
import threading
from typing import Iterator

import anthropic
import pytest

from service.engines import litellm_adapter
from tests.test_fidelity import PNG, send


class Listener:
    """A loopback TCP port that counts the connections made to it (and closes each at once)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # shut down
                return
            self.connections += 1
            conn.close()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread (Linux)
        self.sock.close()
        self._thread.join(5)
        assert not self._thread.is_alive()


@pytest.fixture
def listener(monkeypatch) -> Iterator[Listener]:
    """A listener LiteLLM would be let to download from: its guard against loopback addresses is opened
    for it, so a download attempt anywhere in the proxy shows as a connection."""
    server = Listener()
    monkeypatch.setattr(litellm_adapter.litellm, "user_url_allowed_hosts", [f"127.0.0.1:{server.port}"])
    yield server
    server.close()


@pytest.fixture
def client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk", max_retries=0, timeout=60)


def user(*blocks: dict) -> list[dict]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "What is in these?"}]}]


def url_source(url: str, **extra: str) -> dict:
    return {"type": "url", "url": url, **extra}


async def test_the_listener_sees_a_download_litellm_makes(listener, fake):
    """The control: the same LiteLLM, asked to send an image URL the ordinary way, downloads it."""
    fake.reset()
    with pytest.raises(Exception):  # noqa: B017 - the listener closes the connection; only the attempt matters
        await litellm_adapter.acompletion(model="gemini/gemini-3.8-flash", api_base=fake.base_url, api_key="k",
                                          messages=[{"role": "user", "content": [
                                              {"type": "image_url", "image_url": {"url": listener.url("/a.png")}}]}])
    assert listener.connections > 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_url_sources_reach_gemini_as_file_data_and_are_never_opened(client, gemini, listener, stream):
    blocks = [
        {"type": "image", "source": url_source(listener.url("/photos/cat.PNG?size=large"))},
        {"type": "image", "source": url_source(listener.url("/render"))},                      # no extension
        {"type": "image", "source": url_source(listener.url("/shot"), media_type="image/webp")},
        {"type": "document", "title": "Report", "source": url_source(listener.url("/q3/report.pdf"))},
        {"type": "document", "source": url_source(listener.url("/notes.txt"))},
        {"type": "image", "source": url_source(listener.url("/x?next=gs://bucket/object"))},   # not Cloud Storage
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]
    gemini.enqueue({"text": "A cat, a render, a report and notes."})
    message = send(client, stream, model="gemini-3.8-flash", max_tokens=100, messages=user(*blocks))
    assert message.content[0].text == "A cat, a render, a report and notes."
    record = gemini.requests[-1]
    assert record["status"] == 200, record["error"]
    parts = record["normalized"]["contents"][0]["parts"]
    assert [p["fileData"] for p in parts if "fileData" in p] == [
        {"fileUri": listener.url("/photos/cat.PNG?size=large"), "mimeType": "image/png"},
        {"fileUri": listener.url("/render"), "mimeType": "image/jpeg"},      # content.yaml's default for images
        {"fileUri": listener.url("/shot"), "mimeType": "image/webp"},
        {"fileUri": listener.url("/q3/report.pdf"), "mimeType": "application/pdf"},
        {"fileUri": listener.url("/notes.txt"), "mimeType": "text/plain"},
        {"fileUri": listener.url("/x?next=gs://bucket/object"), "mimeType": "image/jpeg"},
    ]
    assert {"text": "Report"} in parts and [p["inlineData"]["mimeType"] for p in parts if "inlineData" in p] == \
        ["image/png"]
    assert listener.connections == 0


def test_count_tokens_with_url_sources_opens_nothing(client, gemini, listener):
    messages = user({"type": "image", "source": url_source(listener.url("/cat.png"))})
    assert client.messages.count_tokens(model="gemini-2.5-flash", messages=messages).input_tokens > 0
    parts = gemini.requests[-1]["normalized"]["generateContentRequest"]["contents"][0]["parts"]
    assert parts[0] == {"fileData": {"fileUri": listener.url("/cat.png"), "mimeType": "image/png"}}
    gemini.enqueue({"action": "countTokens", "error": {"code": 500, "message": "boom"}})  # the local estimate
    assert client.messages.count_tokens(model="gemini-2.5-flash", messages=messages).input_tokens > 0
    assert listener.connections == 0


@pytest.mark.parametrize(("block", "fragment"), [
    ({"type": "image", "source": url_source("http://169.254.169.254/latest/meta-data")},
     "source.url: must be a URL starting with https://"),
    ({"type": "image", "source": url_source("HTTPS://example.com/a.png")}, "starting with https://"),
    ({"type": "image", "source": url_source("https:///a.png")}, "with a host"),
    ({"type": "image", "source": url_source("https://example.com/a b.png")}, "no spaces"),
    ({"type": "image", "source": url_source("https://example.com/" + "a" * 2048)}, "at most 2048 characters"),
    ({"type": "image", "source": {"type": "url"}}, "source.url: Field required"),
    ({"type": "image", "source": url_source("https://example.com/cat.gif")},
     "'image/gif' (told by the URL's extension) is not supported by Gemini"),
    ({"type": "image", "source": url_source("https://example.com/cat", media_type="application/pdf")},
     "'application/pdf' is not supported"),
    ({"type": "document", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
     "content.0.source.file_id: File 'file_011CNha8iCJcU1wXNR6q4V8w' not found"),
    ({"type": "image", "source": {"type": "file", "file_id": "file_1"}}, "File 'file_1' not found"),
])
def test_url_and_file_sources_the_proxy_cannot_pass_on_are_400s(client, gemini, block, fragment):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="gemini-3.8-flash", max_tokens=50, messages=user(block))
    assert fragment in caught.value.body["error"]["message"]
    assert gemini.requests == []


def test_a_url_source_inside_a_tool_result_is_refused(client, gemini, listener):
    tool = {"name": "screenshot", "input_schema": {"type": "object", "properties": {}}}
    use = {"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1",
              "content": [{"type": "image", "source": url_source(listener.url("/shot.png"))}]}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="gemini-3.8-flash", max_tokens=50, tools=[tool], messages=[
            {"role": "user", "content": "Take one."}, {"role": "assistant", "content": [use]},
            {"role": "user", "content": [result]}])
    message = caught.value.body["error"]["message"]
    assert message.startswith("messages.2.content.0.content.0.source: URL sources are not accepted inside "
                              "tool_result content")
    assert gemini.requests == [] and listener.connections == 0
