"""Loading the YAML tables: each validated against its schema, broken ones named precisely."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from translator import DEFAULT_SPEC_DIR, SpecError, load_spec
from translator.spec import TABLES


def test_every_table_loads_and_is_read_only():
    spec = load_spec()
    for name in TABLES:
        assert getattr(spec, name), name
    with pytest.raises(TypeError):
        spec.models["defaults"]["BIG_MODEL"] = "x"  # type: ignore[index]


def test_overrides_replace_the_yaml_defaults():
    spec = load_spec(big_model="gemini-2.5-pro", small_model="gemini-2.5-flash")
    assert spec.models["defaults"]["BIG_MODEL"] == "gemini-2.5-pro"
    assert spec.models["defaults"]["SMALL_MODEL"] == "gemini-2.5-flash"


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
