"""The table models: their JSON Schemas are the committed ones, and every kind a table may name has a
handler in the code that dispatches on it."""
from __future__ import annotations

import builtins
import shutil
import typing

import httpx
import pytest

from translator import load_spec, map_upstream_error
from translator import __main__ as cli
from translator import request, schema, schema_convert, tables, thinking, tools
from translator.response import outcome
from translator.spec import DEFAULT_SPEC_DIR

SPEC = load_spec()


def values(alias: typing.Any) -> set:
    """The strings a Literal (or a union holding Literals) allows."""
    args = typing.get_args(alias)
    return {a for a in args if isinstance(a, str)} | {v for a in args if not isinstance(a, str) for v in values(a)}


@pytest.mark.parametrize("name", tables.TABLE_MODELS)
def test_the_committed_schema_is_the_models(name):
    path = DEFAULT_SPEC_DIR / "schemas" / f"{name}.schema.json"
    assert path.read_text(encoding="utf-8") == tables.schema_text(name), \
        f"{path} is out of date: run `uv run python -m translator --write-schemas`"


def test_the_schema_command_checks_without_writing(capsys):
    assert cli.main([]) == 0 and capsys.readouterr().err == ""


# --- every kind has a handler ------------------------------------------------------------------------

def test_every_content_kind_has_a_handler_on_both_sides():
    kinds = values(tables.BlockKind)
    assert set(request.USER_PARTS) == kinds and set(request.ASSISTANT_PARTS) == kinds


def test_every_required_field_type_has_a_check():
    assert set(request._JSON_TYPES) == values(tables.FieldType)


def test_every_schema_keyword_kind_has_a_handler():
    object_kinds = {name for model in (tables.Keep, tables.DescribeUnless) for name in model.model_fields}
    emitters, expanders = set(schema_convert._Converter._emitters), set(schema_convert._Converter._expanders)
    assert emitters | expanders == values(tables.KeywordKind) | object_kinds and not emitters & expanders
    assert values(typing.get_type_hints(tables.SchemaPolicy)["unknown_keywords"]) <= emitters
    assert set(schema._VALUE_CHECKS) == values(tables.ValueCheck)
    assert set(schema._MERGERS) == values(tables.MergeRule)


def test_every_thinking_kind_has_a_config():
    assert set(thinking.CONFIGS) == values(tables.ThinkingKind)


# What a tool of each server_tools action becomes, next to a function and alone.
SERVER_ACTIONS = {"leave_out": {"with_function": "left out", "alone": "left out"},
                  "google_search": {"with_function": "left out", "alone": "search grounding"},
                  "url_context": {"with_function": "left out", "alone": "url context"}}


@pytest.mark.parametrize("action", sorted(values(tables.ServerToolAction)))
def test_every_server_tool_action_is_planned(action):
    assert action in SERVER_ACTIONS, f"server tool action {action!r}: add what it becomes here and in tools.plan_tools"
    table = SPEC.tools.model_copy(update={"server_tools": (tables.ServerTool(match="probe_tool", action=action),)})
    probe = {"type": "probe_tool", "name": "probe"}
    function = {"name": "f", "input_schema": {"type": "object", "properties": {}}}
    for case, tool_list in (("with_function", [function, probe]), ("alone", [probe])):
        plan = tools.plan_tools(tool_list, None, table)
        became = ("left out" if "probe" in plan.left_out else
                  "search grounding" if plan.tools and SPEC.tools.google_search_tool in plan.tools else
                  "url context" if plan.tools and SPEC.tools.url_context_tool in plan.tools else "sent")
        assert became == SERVER_ACTIONS[action][case], (action, case)


def test_every_stop_reason_a_table_may_name_is_one_anthropic_clients_know():
    from anthropic.types import StopReason
    assert values(tables.StopReason) == set(typing.get_args(StopReason))
    assert values(tables.OutcomeName) - values(tables.StopReason) == {"malformed"}
    malformed = outcome(None, "MALFORMED_FUNCTION_CALL", tool_calls=False, visible=False, table=SPEC.stop_reasons)
    assert malformed.malformed  # the one outcome that is not a stop reason: retried, then an error


def test_every_error_type_a_table_may_name_is_anthropics():
    from anthropic.types.shared.error_object import ErrorObject
    members = typing.get_args(typing.get_args(ErrorObject)[0])
    sdk_types = {t for member in members for t in values(member.model_fields["type"].annotation)}
    # request_too_large (413) is documented but not in the SDK's union (protocol.md)
    assert values(tables.ErrorType) == sdk_types | {"request_too_large"}


def test_every_exception_errors_yaml_names_exists():
    """A misspelt class name would never match: each is LiteLLM's, Python's or the service's own."""
    import litellm.exceptions

    from service.engines import upstream, vertex
    modules = (litellm.exceptions, builtins, upstream, vertex)
    for name in SPEC.errors.exceptions:
        assert any(isinstance(getattr(module, name, None), type) for module in modules), name
    error = map_upstream_error(SPEC.errors, class_names=[c.__name__ for c in litellm.RateLimitError.__mro__],
                               status=None, message="slow down")
    assert (error.status, error.type) == (429, "rate_limit_error")


# --- the service answers by the tables ---------------------------------------------------------------

KEY = {"x-api-key": "k" * 24}
EDITS = (('message: "invalid x-api-key"', 'message: "a key, please"'),
         ("types: {404: not_found_error,", "types: {404: invalid_request_error,"),
         ("first_seconds: 0.5, factor: 2, jitter_seconds: 0.1", "first_seconds: 0.01, factor: 1, jitter_seconds: 0"))


def test_the_proxys_own_errors_and_backoff_come_from_errors_yaml(tmp_path, make_proxy, gemini):
    spec_dir = tmp_path / "spec"
    shutil.copytree(DEFAULT_SPEC_DIR, spec_dir)
    path = spec_dir / "errors.yaml"
    text = path.read_text()
    for old, new in EDITS:
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    # 0.1 s of room for retries: the YAML's 0.5 s first wait would not fit, the edited 0.01 s does
    proxy = make_proxy(SPEC_DIR=str(spec_dir), PROXY_API_KEY=KEY["x-api-key"], UPSTREAM_RETRIES="2",
                       RETRY_MAX_WAIT_SECONDS="0.1")
    refused = httpx.post(proxy.url + "/v1/messages", json={})
    assert refused.status_code == 401
    assert refused.json()["error"] == {"type": "authentication_error", "message": "a key, please"}
    missing = httpx.get(proxy.url + "/v1/nothing", headers=KEY)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
    gemini.enqueue({"error": {"code": 503, "message": "The model is overloaded."}}, {"text": "back again"})
    body = {"model": "gemini-2.5-flash", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(proxy.url + "/v1/messages", headers=KEY, json=body)
    assert answer.status_code == 200 and [r["status"] for r in gemini.requests if r["action"]] == [503, 200]
