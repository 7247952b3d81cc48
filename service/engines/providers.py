"""The provider table (``spec/providers.yaml``): which engine calls a target model and how its keys are
held, by the target's provider prefix, in the spirit of httpx's mounts.

The rows are data; the mechanism is here: :meth:`Providers.of` finds a target's row (longest prefix),
and :class:`Provider` reads the settings a row names (keys, base URL, key weights). The engines
themselves are service.engines.answers's (``ENGINES``); adding one (Vertex) is a row plus an opener there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from translator import SpecError

from ..config import Settings
from ..tables import read_checked

TABLE = "providers"


@dataclass(frozen=True)
class Provider:
    """One row, bound to the settings it names."""

    prefix: str                     # "" for the default row
    engine: str
    keys: tuple[str, ...] | None    # None: LiteLLM takes credentials from the environment (not pooled)
    missing_keys: str               # the error when the row requires keys and none is set
    params: Mapping[str, str]       # LiteLLM arguments every key's call adds besides its key (api_base)
    weights: Mapping[str, int]      # rpm/tpm weighing the Router's choice among the keys
    count_tokens: bool

    @property
    def pooled(self) -> bool:
        return self.keys is not None


def _setting(settings: Settings, name: str | None) -> Any:
    if name is None:
        return None
    if not hasattr(settings, name):
        raise SpecError(f"{TABLE}.yaml: {name!r} is not a setting of the proxy")
    return getattr(settings, name)


def _bind(prefix: str, row: Mapping[str, Any], settings: Settings) -> Provider:
    found = _setting(settings, row.get("keys"))
    keys: tuple[str, ...] | None = (found,) if isinstance(found, str) and found else tuple(found or ()) or None
    if keys is None and row.get("keys_required"):
        keys = ()
    base = _setting(settings, row.get("api_base"))
    weights = {name: _setting(settings, row.get(f"key_{name}")) or 0 for name in ("rpm", "tpm")}
    return Provider(prefix, row["engine"], keys, row.get("missing_keys", f"No API key is set for {prefix}."),
                    {"api_base": base} if base else {}, {k: v for k, v in weights.items() if v},
                    bool(row.get("count_tokens")))


class Providers:
    """The table's rows, bound to ``settings``."""

    def __init__(self, table: Mapping[str, Any], settings: Settings):
        self.rows = {prefix: _bind(prefix, row, settings) for prefix, row in table["providers"].items()}
        self.default = _bind("", table["default"], settings)
        self._by_length = sorted(self.rows, key=len, reverse=True)

    def of(self, target: str) -> Provider:
        """The row serving ``target`` (``gemini/gemini-2.5-flash`` → ``gemini/``'s)."""
        for prefix in self._by_length:
            if target.startswith(prefix):
                return self.rows[prefix]
        return self.default


def load_providers(settings: Settings, spec_dir: Path | str) -> Providers:
    """``providers.yaml`` checked against its schema and bound to ``settings``; a broken table stops start-up."""
    return Providers(read_checked(Path(spec_dir) / f"{TABLE}.yaml", Path(spec_dir) / "schemas" / f"{TABLE}.schema.json"),
                     settings)
