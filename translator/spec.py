"""Loading the YAML tables that drive the translator.

Every table in ``spec/`` is checked against its JSON Schema in ``spec/schemas/`` when it is
loaded, so a broken edit stops start-up with the file, the place and the rule that failed,
instead of surfacing later as a wrong translation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import jsonschema
import yaml

DEFAULT_SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
TABLES = ("models", "roles", "content", "tools", "stop_reasons", "errors")


class SpecError(ValueError):
    """A table is missing, is not YAML, or breaks its schema."""


@dataclass(frozen=True)
class Spec:
    """The loaded tables, read-only. Build with :func:`load_spec`."""

    models: Mapping[str, Any]
    roles: Mapping[str, Any]
    content: Mapping[str, Any]
    tools: Mapping[str, Any]
    stop_reasons: Mapping[str, Any]
    errors: Mapping[str, Any]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(document root)"


def load_table(name: str, spec_dir: Path | str = DEFAULT_SPEC_DIR) -> dict:
    """Read ``<name>.yaml`` and validate it against ``schemas/<name>.schema.json``."""
    spec_dir = Path(spec_dir)
    path = spec_dir / f"{name}.yaml"
    schema_path = spec_dir / "schemas" / f"{name}.schema.json"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    try:
        schema = yaml.safe_load(schema_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"{schema_path}: schema file not found") from exc
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(
            f"{path}: at {_where(first)}: {first.message} "
            f"(rule '{first.validator}' at schema {'/'.join(map(str, first.absolute_schema_path))}){more}"
        )
    return document


def load_spec(spec_dir: Path | str = DEFAULT_SPEC_DIR, *, big_model: str | None = None,
              small_model: str | None = None) -> Spec:
    """Load and validate every table; ``big_model``/``small_model`` override the YAML defaults.

    The overrides are parameters rather than environment reads so that the library stays
    free of I/O beyond reading its own tables: the service passes what the environment says.
    """
    tables = {name: load_table(name, spec_dir) for name in TABLES}
    defaults = tables["models"]["defaults"]
    if big_model:
        defaults["BIG_MODEL"] = big_model
    if small_model:
        defaults["SMALL_MODEL"] = small_model
    return Spec(**{name: _freeze(doc) for name, doc in tables.items()})
