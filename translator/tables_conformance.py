"""The model of ``spec/conformance.yaml``: what the proxy does with each request field."""
from __future__ import annotations

from typing import Annotated, Literal, Mapping

from pydantic import Field, StringConstraints

from .tables_base import Absent, Name, Table, _mentions, _missing_keys


Status = Literal["native", "emulated", "ignored", "refused"]
BetaHeader = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+-[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class Feature(Table):
    """One request field or content block type of the Anthropic SDK, and what the proxy does with it."""

    requires_when = {"status": {"refused": ("message",)}}
    status: Status
    how: Name                          # what the proxy does with it (native, emulated), or why not
    message: Name | Absent = None      # refused: the 400's message
    beta: BetaHeader | Absent = None   # the anthropic-beta value that enables it, named in refusals


class ConformanceTable(Table):
    """conformance.yaml: every request field, message field and content block type, by status."""

    fields: Annotated[Mapping[FeatureName, Feature], Field(min_length=1)]
    message_fields: Annotated[Mapping[FeatureName, Feature], _missing_keys("role", "content")]
    blocks: Annotated[Mapping[FeatureName, Feature], Field(min_length=1)]
    unknown_field: Annotated[str, _mentions("where", "name")]
    unknown_block: Annotated[str, _mentions("where", "tag", "expected")]
    refused: Annotated[str, _mentions("where", "message")]
    beta_hint: Annotated[str, _mentions("beta", "name")]
