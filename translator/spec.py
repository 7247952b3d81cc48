"""Loading the YAML tables that drive the translator.

Every table in ``spec/`` is checked when it is loaded against the JSON Schema of its model in
``translator/tables.py`` (the schemas in ``spec/schemas/`` are those, written out), then becomes that
model, so a broken edit stops start-up with the file, the place and the rule that failed, instead of
surfacing later as a wrong translation.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import jsonschema
import pydantic
import yaml

from .context import ContextTable
from .errors import AnthropicError
from .prices import PricesTable
from .routing import alias_chain
from .tables import (TABLE_MODELS, ConformanceTable, ContentTable, ErrorsTable, ModelsTable, RolesTable,
                     StopReasonsTable, Table, ThreadsTable, ToolsTable, json_schema)

# spec/ beside the package in a checkout; inside it in an installed wheel (pyproject.toml's force-include).
_PACKAGED_SPEC_DIR = Path(__file__).resolve().parent / "spec"
DEFAULT_SPEC_DIR = _PACKAGED_SPEC_DIR if _PACKAGED_SPEC_DIR.is_dir() else Path(__file__).resolve().parent.parent / "spec"
TABLES = tuple(TABLE_MODELS)
FIELDS = {"context_management": "context"}   # a table whose Spec field is not its file name


class SpecError(ValueError):
    """A table is missing, is not YAML, or breaks its schema."""


@dataclass(frozen=True)
class Spec:
    """The loaded tables, read-only. Build with :func:`load_spec`."""

    models: ModelsTable
    roles: RolesTable
    content: ContentTable
    tools: ToolsTable
    stop_reasons: StopReasonsTable
    errors: ErrorsTable
    threads: ThreadsTable
    conformance: ConformanceTable
    context: ContextTable  # context_management.yaml (translator/context.py)
    prices: PricesTable


@lru_cache(maxsize=None)
def _validator(name: str) -> jsonschema.Draft202012Validator:
    validator = jsonschema.Draft202012Validator
    return validator(json_schema(name), format_checker=validator.FORMAT_CHECKER)


def _where(path: Sequence[Any]) -> str:
    if path and path[-1] == "[key]":  # pydantic's place of a mapping key
        return f"{_where(path[:-1])} (the key)"
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(document root)"


def _validated(document: Any, name: str, label: str) -> Table:
    """The table ``name`` from its YAML ``document``; a :class:`SpecError` naming ``label`` if it breaks a rule."""
    errors = sorted(_validator(name).iter_errors(document),
                    key=lambda e: [(type(p).__name__, p) for p in e.absolute_path])  # ints and keys apart
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(
            f"{label}: at {_where(first.absolute_path)}: {first.message} "
            f"(rule '{first.validator}' at schema {'/'.join(map(str, first.absolute_schema_path))}){more}"
        )
    try:
        return TABLE_MODELS[name].model_validate(document)
    except pydantic.ValidationError as exc:  # what JSON Schema cannot say: the range of a YAML number key
        first = exc.errors()[0]
        raise SpecError(f"{label}: at {_where(first['loc'])}: {first['msg']} (rule '{first['type']}')") from None


def _document(name: str, spec_dir: Path) -> Any:
    path = spec_dir / f"{name}.yaml"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc


def load_table(name: str, spec_dir: Path | str = DEFAULT_SPEC_DIR) -> Table:
    """Read ``<name>.yaml`` into its model (:data:`TABLE_MODELS` ``[name]``), checked."""
    path = Path(spec_dir) / f"{name}.yaml"
    return _validated(_document(name, Path(spec_dir)), name, str(path))


def _check_alias_targets(models: ModelsTable) -> None:
    """Refuse at start-up a target no request could be sent to (``BIG_MODEL=ollama/x`` not enabled)."""
    targets = dict(models.defaults)
    targets.update((f"aliases[{i}].target", a.target) for i, a in enumerate(models.aliases)
                   if a.target not in targets)
    targets.update((f"models.{m}.fallbacks", ",".join(f.fallbacks)) for m, f in models.models.items()
                   if f.fallbacks)
    for where, name in targets.items():
        try:
            if not alias_chain(name, models):
                raise AnthropicError(400, "invalid_request_error", "it names no model")
        except AnthropicError as exc:
            raise SpecError(f"models.yaml: {where} {name!r} is refused: {exc.message}") from None


def _models(spec_dir: Path, big_model: str | None, small_model: str | None,
            provider_prefixes: Sequence[str] | None) -> ModelsTable:
    document = _document("models", spec_dir)
    models = _validated(document, "models", str(spec_dir / "models.yaml"))
    if big_model or small_model or provider_prefixes is not None:
        defaults = {**document["defaults"], **({"BIG_MODEL": big_model} if big_model else {}),
                    **({"SMALL_MODEL": small_model} if small_model else {})}
        prefixes = list(provider_prefixes) if provider_prefixes is not None else document["provider_prefixes"]
        models = _validated({**document, "defaults": defaults, "provider_prefixes": prefixes}, "models",
                            "models.yaml with the overrides")
    assert isinstance(models, ModelsTable)  # TABLE_MODELS["models"]
    _check_alias_targets(models)
    return models


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
    spec_dir = Path(spec_dir)
    models = _models(spec_dir, big_model, small_model, provider_prefixes)
    # Each table is the model TABLE_MODELS names for it: typed by its name, which mypy cannot follow.
    tables: dict[str, Any] = {FIELDS.get(name, name): load_table(name, spec_dir) for name in TABLES if name != "models"}
    return Spec(models=models, **tables)
