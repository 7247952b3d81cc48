"""Message Batches through the Anthropic Python SDK, the proxy and the fake Gemini's Batch API, on SQLite and
PostgreSQL: mixed models with a failing request, a restart between create and results, two client keys, a
Gemini key at its batch quota, cancel and delete."""
from __future__ import annotations

import anthropic
import pytest

from tests.conftest import TEST_KEY
from tests.teams import ADMIN, keys_file, ledger_rows

FLASH, PRO = "gemini-2.5-flash", "claude-haiku-4-5"          # the second → gemini-3.8-flash


def params(text: str, model: str = FLASH, **extra) -> dict:
    return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def client(proxy, key: str = "sk-any") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0)


def until_ended(sdk: anthropic.Anthropic, batch_id: str, reads: int = 10):
    """Retrieve until the batch has ended: each retrieve polls Gemini once (the fake moves a batch on per read)."""
    for _ in range(reads):
        batch = sdk.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
    raise AssertionError(f"batch {batch_id} did not end in {reads} reads: {batch}")


def test_a_batch_of_mixed_models_with_a_failing_request(make_proxy, gemini, database_url):
    proxy = make_proxy(DATABASE_URL=database_url)
    sdk = client(proxy)
    batch = sdk.messages.batches.create(requests=[
        {"custom_id": "flash-1", "params": params("one")},
        {"custom_id": "other-1", "params": params("two", PRO)},
        {"custom_id": "bad", "params": params("three", max_tokens=-1)},
        {"custom_id": "streamed", "params": params("four", stream=True)},
        {"custom_id": "flash-2", "params": params("five", system="Be brief.")},
    ])
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 5 and batch.type == "message_batch"
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    created = [r for r in gemini.requests if r["action"] == "batchGenerateContent"]
    assert sorted((r["model"], len(r["body"]["batch"]["inputConfig"]["requests"]["requests"])) for r in created) == [
        ("gemini-2.5-flash", 2), ("gemini-3.8-flash", 1)]
    flash = next(r for r in created if r["model"] == "gemini-2.5-flash")["body"]["batch"]["inputConfig"]
    assert flash["requests"]["requests"][1]["request"]["system_instruction"] == {"parts": [{"text": "Be brief."}]}
    ended = until_ended(sdk, batch.id)
    assert ended.request_counts.model_dump() == {"processing": 0, "succeeded": 3, "errored": 2, "canceled": 0,
                                                 "expired": 0}
    assert ended.ended_at is not None and ended.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert list(results) == ["flash-1", "other-1", "bad", "streamed", "flash-2"]
    assert results["flash-1"].type == "succeeded"
    assert results["flash-1"].message.content[0].text == "Hello from the fake Gemini."
    assert results["flash-1"].message.model == FLASH and results["other-1"].message.model == PRO
    assert results["bad"].type == "errored" and results["bad"].error.error.type == "invalid_request_error"
    assert "max_tokens" in results["bad"].error.error.message
    assert "stream" in results["streamed"].error.error.message
    assert proxy.run(proxy.app.proxy.ledger.flush())
    rows = [r for r in ledger_rows(database_url) if r["service_tier"] == "batch"]
    assert sorted((r["request_id"].rpartition(":")[2], r["status"]) for r in rows) == [
        ("bad", 400), ("flash-1", 200), ("flash-2", 200), ("other-1", 200), ("streamed", 400)]
    succeeded = next(r for r in rows if r["request_id"].endswith(":flash-1"))
    assert succeeded["output_tokens"] == results["flash-1"].message.usage.output_tokens > 0


def test_an_upstream_error_is_that_requests_error(make_proxy, gemini):
    proxy = make_proxy()
    sdk = client(proxy)
    gemini.enqueue({"text": "fine"}, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad thing"}})
    batch = sdk.messages.batches.create(requests=[{"custom_id": "a", "params": params("x")},
                                                  {"custom_id": "b", "params": params("y")}])
    until_ended(sdk, batch.id)
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert results["a"].message.content[0].text == "fine"
    assert results["b"].error.error.type == "invalid_request_error" and "bad thing" in results["b"].error.error.message


def test_a_restart_between_create_and_results_loses_nothing(fake, gemini, database_url):
    from tests.conftest import proxy_env
    from tests.servers import ProxyServer
    env = proxy_env(fake, DATABASE_URL=database_url)
    with ProxyServer(env) as first:
        batch = client(first).messages.batches.create(requests=[{"custom_id": "kept", "params": params("hi")}])
    with ProxyServer(env) as second:
        sdk = client(second)
        assert sdk.messages.batches.retrieve(batch.id).id == batch.id
        until_ended(sdk, batch.id)
        [result] = list(sdk.messages.batches.results(batch.id))
        assert (result.custom_id, result.result.type) == ("kept", "succeeded")
        assert [b.id for b in sdk.messages.batches.list()] == [batch.id]


def test_each_key_sees_its_own_batches_and_the_admin_all(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={}, bob={})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path))
    alice, bob, admin = client(proxy, secrets["alice"]), client(proxy, secrets["bob"]), client(proxy, ADMIN)
    mine = alice.messages.batches.create(requests=[{"custom_id": "a", "params": params("a")}])
    theirs = bob.messages.batches.create(requests=[{"custom_id": "b", "params": params("b")}])
    assert [b.id for b in alice.messages.batches.list()] == [mine.id]
    assert {b.id for b in admin.messages.batches.list()} == {mine.id, theirs.id}
    for call in (lambda: alice.messages.batches.retrieve(theirs.id), lambda: alice.messages.batches.cancel(theirs.id),
                 lambda: list(alice.messages.batches.results(theirs.id))):
        with pytest.raises(anthropic.NotFoundError, match=theirs.id):
            call()
    until_ended(admin, theirs.id)
    assert [r.custom_id for r in bob.messages.batches.results(theirs.id)] == ["b"]


def test_cancel_then_delete(make_proxy, gemini):
    proxy = make_proxy()
    sdk = client(proxy)
    batch = sdk.messages.batches.create(requests=[{"custom_id": "a", "params": params("a")}])
    with pytest.raises(anthropic.BadRequestError, match="still in progress"):
        sdk.messages.batches.delete(batch.id)
    canceled = sdk.messages.batches.cancel(batch.id)
    assert canceled.cancel_initiated_at is not None
    ended = until_ended(sdk, batch.id)
    assert ended.request_counts.canceled == 1
    assert [r.result.type for r in sdk.messages.batches.results(batch.id)] == ["canceled"]
    assert sdk.messages.batches.delete(batch.id).type == "message_batch_deleted"
    assert not gemini.gemini_batches
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve(batch.id)


def test_a_key_at_its_batch_quota_moves_the_next_batch_to_another_key(make_proxy, gemini):
    gemini.batch_limit_per_key = 1
    proxy = make_proxy(GEMINI_API_KEYS=f"{TEST_KEY},second-gemini-key-0123")
    sdk = client(proxy)
    first = sdk.messages.batches.create(requests=[{"custom_id": "a", "params": params("a")}])
    second = sdk.messages.batches.create(requests=[{"custom_id": "b", "params": params("b")}])
    owners = [b["key"] for b in gemini.gemini_batches.values()]
    assert sorted(owners) == sorted([TEST_KEY, "second-gemini-key-0123"])
    for batch in (first, second):
        until_ended(sdk, batch.id)
        assert [r.result.type for r in sdk.messages.batches.results(batch.id)] == ["succeeded"]


def test_without_a_database_batches_say_one_is_needed(make_proxy, gemini):
    proxy = make_proxy(DATABASE_URL="off")
    with pytest.raises(anthropic.NotFoundError, match="needs the proxy's database"):
        client(proxy).messages.batches.create(requests=[{"custom_id": "a", "params": params("a")}])


def test_requests_gemini_did_not_answer_in_its_window_are_expired(make_proxy, gemini):
    gemini.batch_final_state = "BATCH_STATE_EXPIRED"
    sdk = client(make_proxy())
    batch = sdk.messages.batches.create(requests=[{"custom_id": "late", "params": params("a")}])
    assert until_ended(sdk, batch.id).request_counts.expired == 1
    assert [r.result.type for r in sdk.messages.batches.results(batch.id)] == ["expired"]


def test_requests_over_geminis_inline_limit_are_split(make_proxy, gemini):
    proxy = make_proxy()
    proxy.app.batches.inline_limit = 2500  # Gemini's is 20 MB: three requests of ~1.1 kB make two batches here
    sdk = client(proxy)
    batch = sdk.messages.batches.create(requests=[{"custom_id": f"r{n}", "params": params(str(n) * 1000)}
                                                  for n in range(3)])
    created = [r for r in gemini.requests if r["action"] == "batchGenerateContent"]
    assert [len(r["body"]["batch"]["inputConfig"]["requests"]["requests"]) for r in created] == [2, 1]
    until_ended(sdk, batch.id)
    assert [r.custom_id for r in sdk.messages.batches.results(batch.id) if r.result.type == "succeeded"] == [
        "r0", "r1", "r2"]


def test_two_replicas_settle_each_result_once(fake, gemini, database_url):
    from tests.conftest import proxy_env
    from tests.servers import ProxyServer
    env = proxy_env(fake, DATABASE_URL=database_url)
    with ProxyServer(env) as first, ProxyServer(env) as second:
        batch = client(first).messages.batches.create(requests=[{"custom_id": f"r{n}", "params": params("x")}
                                                                for n in range(3)])
        for _ in range(5):
            for replica in (second, first):
                client(replica).messages.batches.retrieve(batch.id)
        assert [r.result.type for r in client(second).messages.batches.results(batch.id)] == ["succeeded"] * 3
        for replica in (first, second):
            assert replica.run(replica.app.proxy.ledger.flush())
    booked = [r["request_id"] for r in ledger_rows(database_url) if r["service_tier"] == "batch"]
    assert sorted(booked) == [f"{batch.id}:r{n}" for n in range(3)]


def test_a_request_without_a_model_is_that_requests_error(make_proxy, gemini):
    proxy = make_proxy()
    sdk = client(proxy)
    no_model = {"max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}
    batch = sdk.messages.batches.create(requests=[{"custom_id": "a", "params": params("x")},
                                                  {"custom_id": "none", "params": no_model},
                                                  {"custom_id": "number", "params": {**no_model, "model": 5}}])
    until_ended(sdk, batch.id)
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded"
    for custom_id in ("none", "number"):
        error = results[custom_id].error.error
        assert error.type == "invalid_request_error" and error.message.startswith("params.model: ")


def test_a_request_for_a_vertex_model_is_refused_by_the_provider_table(make_proxy, gemini):
    """Gemini's Batch API is AI Studio's: a target the provider table serves on Vertex (or LiteLLM) is
    that request's 400, the others run."""
    proxy = make_proxy(PROVIDER_PREFIXES="gemini/,vertex_ai/", VERTEXAI_API_KEY="vertex-express-key-0123456789",
                       BIG_MODEL="vertex_ai/gemini-3.8-flash")
    sdk = client(proxy)
    batch = sdk.messages.batches.create(requests=[{"custom_id": "a", "params": params("x")},
                                                  {"custom_id": "vertex", "params": params("y", "claude-sonnet-4-5")}])
    until_ended(sdk, batch.id)
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded"
    error = results["vertex"].error.error
    assert error.type == "invalid_request_error" and "AI Studio (gemini/) deployment" in error.message
    assert "vertex-express-key" not in error.message
