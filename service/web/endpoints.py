"""The HTTP surface beyond translation, from ``spec/endpoints.yaml``: the Anthropic endpoints the proxy does
not offer (answered with an error that names what is missing, not the framework's "not found") and the CORS
policy that ``cors.py`` applies."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, NoReturn

from quart import Blueprint

from translator import AnthropicError

from ..tables import read_checked

TABLE = "endpoints"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def load_endpoints(spec_dir: Path | str) -> Mapping[str, Any]:
    """``endpoints.yaml``, checked against its schema; a broken table stops start-up naming file and place."""
    return read_checked(Path(spec_dir) / f"{TABLE}.yaml", Path(spec_dir) / "schemas" / f"{TABLE}.schema.json")


def unsupported_routes(table: Mapping[str, Any]) -> Blueprint:
    """A route per endpoint not offered (and one for what is under it, with ``subpaths``), any method."""
    routes = Blueprint("unsupported", __name__)
    for index, entry in enumerate(table["unsupported"]):
        async def not_offered(rest: str = "", entry: Mapping[str, Any] = entry) -> NoReturn:
            raise AnthropicError(entry["status"], entry["type"], entry["message"])

        rules = [entry["path"]] + ([entry["path"] + "/<path:rest>"] if entry["subpaths"] else [])
        for rule in rules:
            routes.add_url_rule(rule, f"unsupported_{index}", not_offered, methods=_METHODS)
    return routes
