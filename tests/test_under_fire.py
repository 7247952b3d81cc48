"""Operating conditions that broke the proxy (issue 15): bursts of connections, shutdowns with
answers in flight, clients that stop reading, and a silent upstream."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import time

import httpx
import pytest

from service.config import load_settings
from tests.conftest import TEST_KEY
from tests.servers import HypercornProcess
from tests.sse_grammar import check_stream


def body(**more):
    return {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], **more}


def server_env(fake, **more) -> dict[str, str]:
    return {"GEMINI_API_KEY": TEST_KEY, "GEMINI_API_BASE": fake.base_url, "LOG_LEVEL": "INFO", **more}


# -- a burst of new connections ------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
    return found


def _connect_all(port: int, count: int, within: float) -> tuple[list[socket.socket], int]:
    """``count`` connections begun at once; how many the kernel established within ``within`` s."""
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        clients.append(client)
    established: set[socket.socket] = set()
    deadline = time.monotonic() + within
    # epoll, not select(): select() refuses descriptors past 1023, which a long test run can reach.
    with selectors.DefaultSelector() as waiting:
        for client in clients:
            waiting.register(client, selectors.EVENT_WRITE)
        while len(established) < count and time.monotonic() < deadline:
            for key, _ in waiting.select(0.2):
                client = key.fileobj
                assert isinstance(client, socket.socket)
                waiting.unregister(client)
                if client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    established.add(client)
    return clients, len(established)


def _served(client: socket.socket) -> bool:
    client.setblocking(True)
    client.settimeout(30)
    client.sendall(b"GET /health HTTP/1.1\r\nhost: proxy\r\nconnection: close\r\n\r\n")
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    client.close()
    return answer.startswith(b"HTTP/1.1 200")


def test_a_burst_of_500_connections_waits_for_a_busy_worker_with_the_readmes_config(fake, tmp_path):
    """While the worker is busy (here: stopped), the kernel queues new connections up to the listen
    backlog and drops the rest; Hypercorn's default of 100 dropped 399 of these 500."""
    server = HypercornProcess(server_env(fake, LOG_LEVEL="WARNING"), directory=tmp_path).start()
    workers = _children(server.process.pid)
    try:
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        clients, established = _connect_all(server.port, 500, within=3)
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
        assert established == 500
        assert sum(_served(client) for client in clients) == 500
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        server.stop()


# -- shutdown with answers in flight -------------------------------------------------------------

def _signal(server: HypercornProcess, target: str) -> None:
    if target == "group":  # what systemd and `kill -TERM -PGID` do
        os.killpg(server.process.pid, signal.SIGTERM)
    else:
        server.process.send_signal(signal.SIGTERM)


def _refused_soon(url: str, within: float) -> bool:
    """After the signal: a new connection is refused (not left hanging) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health", timeout=1)
        except httpx.TimeoutException:
            return False  # accepted into a backlog nobody serves: the hang this test is about
        except httpx.TransportError:
            return True  # refused, or reset while queued as the socket shut down: retried elsewhere
    return False


async def _stream_text(url: str, spec_body: dict, started: asyncio.Event) -> bytes:
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", url + "/v1/messages", json=spec_body) as response:
            assert response.status_code == 200
            received = b""
            async for chunk in response.aiter_bytes():
                received += chunk
                if b"content_block_delta" in received:
                    started.set()
            return received


async def _started(task: asyncio.Task, started: asyncio.Event) -> None:
    """Until the stream has begun; a stream that failed first raises its error instead of waiting for ever."""
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if not started.is_set():
        task.result()  # its error (a 401, a refused connection)
        raise AssertionError("the stream ended before its first content_block_delta")


async def _answers_during_shutdown(server: HypercornProcess, target: str, fake) -> tuple[list, bool]:
    short_started, long_started = asyncio.Event(), asyncio.Event()
    short = asyncio.create_task(_stream_text(server.url, body(stream=True), short_started))
    await _started(short, short_started)
    long = asyncio.create_task(_stream_text(server.url, body(stream=True), long_started))
    await _started(long, long_started)
    async with httpx.AsyncClient(timeout=30) as client:
        plain = asyncio.create_task(client.post(server.url + "/v1/messages", json=body()))
        assert await fake.wait_for_async(lambda reqs: len(reqs) == 3 and reqs[-1]["status"] == 200, timeout=10)
        _signal(server, target)
        refused = await asyncio.to_thread(_refused_soon, server.url, 2.0)
        return [await short, await long, await plain], refused


@pytest.mark.parametrize("target", ["group", "master"])
def test_sigterm_drains_refuses_new_connections_and_ends_late_streams_with_an_error(fake, gemini, tmp_path,
                                                                                   target):
    # Taken in order: the short answer ends inside graceful_timeout (3 s); the long ones would take 20 s.
    long_answer = {"text": " ".join(["word"] * 40), "text_chunks": 40, "chunk_delay_s": 0.5}
    gemini.enqueue({"text": "one two three four", "text_chunks": 4, "chunk_delay_s": 0.3}, long_answer, long_answer)
    server = HypercornProcess(server_env(fake), {"graceful_timeout": "3"}, tmp_path).start()
    try:
        (short, long, plain), refused = asyncio.run(_answers_during_shutdown(server, target, gemini))
        assert server.process.wait(timeout=20) == 0
    finally:
        log = server.stop()
    assert check_stream(short)[-1]["type"] == "message_stop"
    ending = check_stream(long, expect_error=True)[-1]
    assert ending["type"] == "error" and ending["error"]["type"] == "overloaded_error", ending
    assert plain.status_code == 529 and plain.json()["error"]["type"] == "overloaded_error"
    assert refused, "a new connection during the drain was not refused"
    lines = [json.loads(line.split(" proxy.access ", 1)[1]) for line in log.splitlines() if " proxy.access " in line]
    answers = sorted((line["status"], line.get("stop", "")) for line in lines if line["path"] == "/v1/messages")
    assert answers == [(200, "end_turn"), (200, "shutdown"), (529, "")], log


# -- a client that stops reading -----------------------------------------------------------------

async def _read_headers_then_stall(url: str, http2: bool, fake) -> bool:
    """Open a stream, read its headers, read nothing more; True if the proxy let go of the upstream."""
    async with httpx.AsyncClient(http1=not http2, http2=http2, timeout=30) as client:
        async with client.stream("POST", url + "/v1/messages", json=body(stream=True)) as response:
            assert response.status_code == 200
            return await fake.wait_for_async(lambda reqs: reqs and reqs[-1]["disconnected"], timeout=15)


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_a_client_that_stops_reading_is_let_go(make_proxy, gemini, caplog, http2):
    proxy = make_proxy(WRITE_TIMEOUT_SECONDS="1", IDLE_TIMEOUT_SECONDS="600", PING_INTERVAL_SECONDS="600")
    # 40 MB in 400 chunks, more than any socket buffer between the proxy and the client holds.
    gemini.enqueue({"text": "x" * 40_000_000, "text_chunks": 400, "chunk_delay_s": 0.01})
    with caplog.at_level(logging.INFO, logger="proxy"):
        assert asyncio.run(_read_headers_then_stall(proxy.url, http2, gemini)), "the upstream is still held"
        assert gemini.wait_for(lambda reqs: "client stopped reading" in caplog.text, timeout=5), caplog.text


# -- a silent upstream ---------------------------------------------------------------------------

def test_a_silent_upstream_is_a_504_within_the_first_byte_timeout_without_streaming(make_proxy, gemini):
    proxy = make_proxy(FIRST_BYTE_TIMEOUT_SECONDS="0.5")
    gemini.enqueue({"hang": True})
    started = time.monotonic()
    response = httpx.post(proxy.url + "/v1/messages", json=body(), timeout=20)
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    assert time.monotonic() - started < 5
    assert gemini.wait_for(lambda reqs: reqs and reqs[-1]["disconnected"], timeout=2)


def test_a_long_answer_that_keeps_coming_is_not_cut_by_the_first_byte_timeout(make_proxy, gemini):
    proxy = make_proxy(FIRST_BYTE_TIMEOUT_SECONDS="0.5")
    gemini.enqueue({"text": "one two three four five", "text_chunks": 5, "chunk_delay_s": 0.3})
    response = httpx.post(proxy.url + "/v1/messages", json=body(), timeout=20)
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "one two three four five"


def test_hung_upstream_defaults_answer_in_about_a_minute():
    settings = load_settings(environ={}, env_file=None)
    assert settings.first_byte_timeout_seconds == 60 and settings.write_timeout_seconds == 60
    assert settings.idle_timeout_seconds == 120 and settings.request_timeout_seconds == 600


# -- one huge request among small ones -----------------------------------------------------------

def _huge_enum_request(values: int) -> dict:
    schema = {"type": "object", "properties": {"pick": {"type": "string", "enum": [f"v{i}" for i in range(values)]}}}
    return body(tools=[{"name": "choose", "description": "Pick one.", "input_schema": schema}])


def test_a_huge_tool_schema_does_not_hold_up_small_ones(fake, gemini, tmp_path):
    """The 2 MB request that froze every client for minutes (a 200,000-value enum: de-duplicating by
    list membership took 165 s of the event loop) is now a prompt 400 naming the bound, and one at
    the bound (10,000 values) translates in linear time; small requests sent meanwhile are answered
    as usual. The proxy runs in a process of its own, so that only its own work is measured."""
    server = HypercornProcess(server_env(fake, LOG_LEVEL="WARNING"), directory=tmp_path).start()
    gemini.default_spec = {"text": "ok"}
    huge = [json.dumps(_huge_enum_request(n)).encode() for n in (200_000, 10_000, 200_000)]
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, timeout=60) as small, httpx.Client(base_url=server.url, timeout=60) as big:
        assert small.post("/v1/messages", json=body()).status_code == 200  # LiteLLM's lazy imports done

        async def run() -> list[int]:
            sending = [asyncio.create_task(asyncio.to_thread(big.post, "/v1/messages", content=content, timeout=30,
                                                             headers={"content-type": "application/json"}))
                       for content in huge]
            while not all(task.done() for task in sending):
                started = time.monotonic()
                assert (await asyncio.to_thread(small.post, "/v1/messages", json=body())).status_code == 200
                latencies.append(time.monotonic() - started)
            return [(await task).status_code for task in sending]

        try:
            assert asyncio.run(run()) == [400, 200, 400]
        finally:
            server.stop()
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
