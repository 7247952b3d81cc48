"""Loading the YAML tables that drive the translator.

Every table in ``spec/`` is checked against its JSON Schema in ``spec/schemas/`` when it is
loaded, so a broken edit stops start-up with the file, the place and the rule that failed,
instead of surfacing later as a wrong translation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import jsonschema
import yaml

from .errors import AnthropicError
from .routing import alias_chain

DEFAULT_SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
TABLES = ("models", "roles", "content", "tools", "stop_reasons", "errors", "threads")


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
    threads: Mapping[str, Any]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(document root)"


def _validated(document: Any, schema_path: Path, label: str) -> Any:
    try:
        schema = yaml.safe_load(schema_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"{schema_path}: schema file not found") from exc
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(
            f"{label}: at {_where(first)}: {first.message} "
            f"(rule '{first.validator}' at schema {'/'.join(map(str, first.absolute_schema_path))}){more}"
        )
    return document


def load_table(name: str, spec_dir: Path | str = DEFAULT_SPEC_DIR) -> dict:
    """Read ``<name>.yaml`` and validate it against ``schemas/<name>.schema.json``."""
    spec_dir = Path(spec_dir)
    path = spec_dir / f"{name}.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    return _validated(document, spec_dir / "schemas" / f"{name}.schema.json", str(path))


def _check_alias_targets(models: Mapping[str, Any]) -> None:
    """Refuse at start-up a target no request could be sent to (``BIG_MODEL=ollama/x`` not enabled)."""
    targets = dict(models["defaults"])
    targets.update((f"aliases[{i}].target", a["target"]) for i, a in enumerate(models["aliases"])
                   if a["target"] not in targets)
    targets.update((f"models.{m}.fallbacks", ",".join(f["fallbacks"])) for m, f in models["models"].items()
                   if f.get("fallbacks"))
    for where, name in targets.items():
        try:
            if not alias_chain(name, models):
                raise AnthropicError(400, "invalid_request_error", "it names no model")
        except AnthropicError as exc:
            raise SpecError(f"models.yaml: {where} {name!r} is refused: {exc.message}") from None


def load_spec(spec_dir: Path | str = DEFAULT_SPEC_DIR, *, big_model: str | None = None,
              small_model: str | None = None, provider_prefixes: Sequence[str] | None = None) -> Spec:
    """Load and validate every table; ``big_model``/``small_model`` override the YAML defaults,
    ``provider_prefixes`` replaces the list of enabled provider prefixes.

    The overrides are parameters rather than environment reads so that the library stays
    free of I/O beyond reading its own tables: the service passes what the environment says.
    They go through the same schema and checks as the YAML. Returns the read-only :class:`Spec`;
    raises :class:`SpecError` naming the table, the place and the rule for a missing, unreadable
    or invalid table (or override).
    """
    tables = {name: load_table(name, spec_dir) for name in TABLES}
    models = tables["models"]
    if big_model:
        models["defaults"]["BIG_MODEL"] = big_model
    if small_model:
        models["defaults"]["SMALL_MODEL"] = small_model
    if provider_prefixes is not None:
        models["provider_prefixes"] = list(provider_prefixes)
    if big_model or small_model or provider_prefixes is not None:
        _validated(models, Path(spec_dir) / "schemas" / "models.schema.json", "models.yaml with the overrides")
    _check_alias_targets(models)
    return Spec(**{name: _freeze(doc) for name, doc in tables.items()})
