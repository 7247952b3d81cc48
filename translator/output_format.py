"""Structured outputs: ``output_config.format`` (or the older top-level ``output_format``) → Gemini's
JSON mode, ``responseMimeType: application/json`` with the schema as ``responseJsonSchema``.

The schema goes through the tool-schema policy (tools.yaml ``schema_policy`` with ``response_schema``'s
differences), so a keyword Gemini does not honour is told in a description instead of silently lost.
LiteLLM's own ``response_format`` is not used: in 1.106.2 it deletes every key named ``strict`` from
the schema (a property called ``strict`` too, leaving ``required`` naming it), and for model names
without a version number (``gemini-flash-latest``) it sends the OpenAPI ``responseSchema`` instead.
"""
from __future__ import annotations

from typing import Any

from .anthropic_types import JsonOutputFormat, MessagesRequest
from .errors import invalid_request
from .routing import Route
from .spec import Spec
from .tools import ToolError, ToolPlan, response_schema


def _chosen(request: MessagesRequest) -> tuple[str, JsonOutputFormat] | None:
    """The request's format and where it was given; a 400 when it was given in both places."""
    config = request.output_config.format if request.output_config else None
    if config is not None and request.output_format is not None:
        raise invalid_request("output_format: give the format once, as output_config.format "
                              "(output_format is its older, deprecated place).")
    if config is not None:
        return "output_config.format", config
    return ("output_format", request.output_format) if request.output_format is not None else None


def output_schema(request: MessagesRequest, route: Route, plan: ToolPlan, spec: Spec) -> dict[str, Any] | None:
    """The ``responseJsonSchema`` for the request's format, or None when it asks for none.

    Raises a 400 :class:`AnthropicError` for a schema over the tools.yaml bounds, or a format with
    tools on a model that cannot take both (models.yaml ``structured_output_with_tools``). Like tool
    schemas, a schema is not checked against JSON Schema's metaschema (that takes seconds for large
    ones): what the policy cannot read is told in a description or left out."""
    chosen = _chosen(request)
    if chosen is None:
        return None
    where, found = chosen
    if plan.tools and not route.facts.structured_output_with_tools:
        raise invalid_request(f"{where}: {route.gemini_name} cannot give structured output in a request with tools "
                              "(Gemini 2.x refuses JSON mode with tools); use a Gemini 3 model, or leave out "
                              "the tools or the format.")
    try:
        return response_schema(found.json_schema, spec.tools, (where, "schema"))
    except ToolError as exc:
        raise invalid_request(str(exc)) from None
