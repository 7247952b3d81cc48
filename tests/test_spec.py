"""Loading the YAML tables: each validated against its schema into its model, broken ones named precisely."""
from __future__ import annotations

import shutil
from pathlib import Path

import pydantic
import pytest
import yaml

from translator import DEFAULT_SPEC_DIR, SpecError, load_spec, map_upstream_error
from translator.tables import TABLE_MODELS
from translator.spec import FIELDS


def test_every_table_loads_into_its_model_and_is_read_only():
    spec = load_spec()
    for name, model in TABLE_MODELS.items():
        assert type(getattr(spec, FIELDS.get(name, name))) is model, name
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        spec.models.defaults.BIG_MODEL = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.content.blocks["text"] = spec.content.blocks["image"]  # type: ignore[index]
    with pytest.raises(TypeError):  # a value the table keeps as it is (a client tool's schema) is frozen too
        spec.tools.client_tools[0].input_schema.properties["command"]["type"] = "x"  # type: ignore[index]
    assert isinstance(spec.models.aliases, tuple) and isinstance(spec.tools.client_tools[1].input_schema.required, tuple)


def test_overrides_replace_the_yaml_defaults():
    spec = load_spec(big_model="gemini-2.5-pro", small_model="gemini-2.5-flash")
    assert spec.models.defaults.BIG_MODEL == "gemini-2.5-pro"
    assert spec.models.defaults.SMALL_MODEL == "gemini-2.5-flash"


def _broken_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    target = tmp_path / "spec"
    shutil.copytree(DEFAULT_SPEC_DIR, target)
    path = target / f"{name}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return target


@pytest.mark.parametrize(("name", "old", "new", "expected"), [
    ("models", "max_output_tokens: 65536, context_window", "max_output_tokens: lots, context_window",
     ["models.yaml", "models.gemini-4-argon.max_output_tokens", "'lots' is not of type 'integer'", "rule 'type'"]),
    ("stop_reasons", "MAX_TOKENS: max_tokens", "MAX_TOKENS: out_of_tokens",
     ["stop_reasons.yaml", "native.MAX_TOKENS"]),
    ("errors", "status: 529\n    type: overloaded_error", "status: 529\n    type: overloaded",
     ["errors.yaml", "messages[1].type", "'overloaded' is not one of"]),
    ("content", "kind: text,", "kind: texty,", ["content.yaml", "blocks.text.kind"]),
    ("roles", "as: assistant", "as: model", ["roles.yaml", "roles.assistant.as"]),
    # an optional key may be left out, not set to null
    ("roles", 'wrap: "<system>\\n{text}\\n</system>"', "wrap: null", ["roles.system.wrap", "None is not of type 'string'"]),
    ("content", "kind: flatten, requires: {tool_name: string}, text_fields: [tool_name]",
     "kind: flatten, requires: {tool_name: string}",
     ["blocks.tool_reference", "'text_fields' is a required property", "rule 'required'"]),
    ("content", "id_pattern: '^[a-zA-Z0-9_-]+$'", "id_pattern: '[a-z'", ["id_pattern", "is not a 'regex'"]),
    ("models", "levels: [low, high]", "levels: [low, low]", ["models.gemini-3-pro-preview.levels", "non-unique"]),
    ("models", "budget: [[128, 32768]]", "budget: [[32768, 128]]",
     ["models.gemini-2.5-pro.budget", "the low end is above the high end"]),
    ("models", "levels: [low, high], sampling_params", "sampling_params",
     ["models.gemini-3-pro-preview", "'levels' is a required property"]),
    ("models", "  default_limit: 20", "  default_limit: 0", ["listing.default_limit", "less than the minimum of 1"]),
    ("tools", "action: google_search}", "action: search}", ["tools.yaml", "server_tools[0].action"]),
    ("stop_reasons", "malformed_retries: 1", "malformed_retries: 1\nretries: 2",
     ["(document root)", "('retries' was unexpected)"]),
    ("errors", "{limit} bytes.", "{max} bytes.", ["own.body_too_large.message", "does not match"]),
    ("errors", "File {file_id!r} not found", "File {file_id!s} not found", ["own.file_not_found.message", "does not match"]),
    ("errors", "with id {batch_id!r}.", "with id {id!r}.", ["own.batch_not_found.message", "does not match"]),
    ("errors", "retry_backoff: {first_seconds: 0.5", "retry_backoff: {first_seconds: 0",
     ["retry_backoff.first_seconds", "less than or equal to the minimum of 0"]),
    # a YAML number key: JSON Schema cannot bound it, the model does
    ("errors", "  504: {status: 504", "  704: {status: 504",
     ["errors.yaml", "statuses[704]", "less than or equal to 599"]),
])
def test_a_broken_table_names_file_place_and_rule(tmp_path, name, old, new, expected):
    spec_dir = _broken_copy(tmp_path, name, old, new)
    with pytest.raises(SpecError) as caught:
        load_spec(spec_dir)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_not_yaml_and_missing_file_are_named(tmp_path):
    spec_dir = _broken_copy(tmp_path, "roles", "roles:", "roles: [unclosed")
    with pytest.raises(SpecError, match="roles.yaml: not valid YAML"):
        load_spec(spec_dir)
    (spec_dir / "roles.yaml").unlink()
    with pytest.raises(SpecError, match="roles.yaml: file not found"):
        load_spec(spec_dir)


def test_an_upstream_status_no_rule_names_maps_by_the_statuses_table():
    errors = load_spec().errors
    error = map_upstream_error(errors, class_names=["APIError", "Exception"], status=402, message="pay up")
    assert (error.status, error.type, error.message) == (402, "billing_error", "pay up")
    error = map_upstream_error(errors, class_names=["APIError"], status=403, message="denied")
    assert (error.status, error.type) == (500, "api_error") and "proxy's credentials" in error.message
    assert error.should_retry is False   # retry: false → x-should-retry: false
    named = map_upstream_error(errors, class_names=["APIError"], status=401, message="no", upstream="Vertex AI")
    assert named.message == "Vertex AI rejected the proxy's credentials."
    assert map_upstream_error(errors, class_names=[], status=500, message="x").should_retry is None
    assert map_upstream_error(errors, class_names=[], status=418, message="x").status == 500  # unlisted: default


def test_an_edited_message_with_other_braces_is_answered_as_written(tmp_path):
    """An operator's ``{docs}`` in errors.yaml is kept; only the groups and ``{upstream}`` are filled."""
    shutil.copytree(DEFAULT_SPEC_DIR, tmp_path / "spec")
    table = yaml.safe_load((tmp_path / "spec" / "errors.yaml").read_text())
    table["messages"].insert(0, {"pattern": "quota (\\w+)", "status": 429, "type": "rate_limit_error",
                                 "message": "{upstream}: quota {1} used up, see {docs} or {7}"})
    table["statuses"][402]["message"] = "{upstream} wants payment, see {docs}"
    (tmp_path / "spec" / "errors.yaml").write_text(yaml.safe_dump(table))
    errors = load_spec(tmp_path / "spec").errors
    quota = map_upstream_error(errors, class_names=[], status=429, message="quota daily exceeded", upstream="Vertex AI")
    assert quota.message == "Vertex AI: quota daily used up, see {docs} or {7}"
    assert map_upstream_error(errors, class_names=[], status=402, message="x").message == \
        "The upstream wants payment, see {docs}"


def test_an_own_error_quotes_with_r_and_carries_its_error_code():
    own = load_spec().errors.own
    error = own.file_not_downloadable.error(file_id="file_'1")
    assert error.message.startswith('File "file_\'1" is not downloadable')
    assert error.details == {"error_code": "file_not_downloadable"} and own.file_not_found.error(file_id="f").details is None
    assert own.over_rate_limit.error(key="k", limit="5 tokens", retry_after=2.5).retry_after == 2.5
