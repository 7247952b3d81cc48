"""The tables of ``spec/`` as typed, read-only models.

Each YAML table loads into one of the models of ``tables_<family>.py`` (building blocks in
``tables_base.py``), all importable from here; the JSON Schemas in ``spec/schemas/`` are
these models' ``model_json_schema()`` (``python -m translator --write-schemas`` writes them), so the
schema a table is checked against and the fields the code reads are one definition. Every rule of
the schemas (patterns, bounds, enums, no unknown keys) is a type or a :class:`Rule` there; mappings
load as ``MappingProxyType`` and lists as tuples, so nothing can change a table after it loaded.
"""
from __future__ import annotations

import json
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Mapping

from .tables_base import (UNIQUE, Absent, Count, ErrorStatus, ErrorType, Frozen, HttpStatus, Name, Positive, Regex,
                          Role, Rule, Table, _SchemaWriter)
from .tables_models import (Alias, BudgetLevel, BudgetRange, Defaults, Effort, Facts, Level, Listing, ModelsTable,
                            Prefix, ServerFallbacks, ServiceTier, ThinkingKind, ThinkingRules)
from .tables_content import (BlockKind, BlockRule, ContentLimits, ContentTable, FieldType, MediaType, RoleRule,
                             RolesTable, UrlSources)
from .tables_tools import (CallingMode, ClientTool, DescribeUnless, DescriptionFormat, Formats, ItemTypeName, Keep,
                           KeywordKind, LeftOutProperties, MergeRule, Naming, ResponseSchemaPolicy, SchemaPolicy,
                           ServerTool, ServerToolAction, StrictToolChoice, ToolChoiceMap, ToolInputSchema, ToolLimits,
                           ToolsTable, TypeName, ValueCheck, WebFetchErrorCode)
from .tables_errors import (Backoff, ErrorTarget, ErrorText, ErrorsTable, FallbackOn, FieldName, FrameworkErrors,
                            HeldField, MessageRule, OutcomeName, OwnErrors, RefusalDetails, StopReason,
                            StopReasonsTable, ThreadError, ThreadErrors, ThreadsTable)
from .tables_conformance import BetaHeader, ConformanceTable, Feature, FeatureName, Status
from .context import ContextTable
from .prices import PricesTable

__all__ = [
    "Absent", "Alias", "Backoff", "BetaHeader", "BlockKind", "BlockRule", "BudgetLevel", "BudgetRange",
    "CallingMode", "ClientTool", "ConformanceTable", "ContentLimits", "ContextTable", "ContentTable", "Count", "Defaults",
    "DescribeUnless", "DescriptionFormat", "Effort", "ErrorStatus", "ErrorTarget", "ErrorText", "ErrorType",
    "ErrorsTable", "Facts", "FallbackOn", "Feature", "FeatureName", "FieldName", "FieldType", "Formats",
    "FrameworkErrors", "Frozen", "HeldField", "HttpStatus", "ItemTypeName", "Keep", "KeywordKind",
    "LeftOutProperties", "Level", "Listing", "MediaType", "MergeRule", "MessageRule", "ModelsTable", "Name",
    "Naming", "OutcomeName", "OwnErrors", "Positive", "Prefix", "PricesTable", "RefusalDetails", "Regex", "ResponseSchemaPolicy",
    "Role", "RoleRule", "RolesTable", "Rule", "SchemaPolicy", "ServerFallbacks", "ServerTool", "ServerToolAction",
    "ServiceTier", "Status", "StopReason", "StopReasonsTable", "StrictToolChoice", "TABLE_MODELS", "Table",
    "ThinkingKind", "ThinkingRules", "ThreadError", "ThreadErrors", "ThreadsTable", "ToolChoiceMap",
    "ToolInputSchema", "ToolLimits", "ToolsTable", "TypeName", "UNIQUE", "UrlSources", "ValueCheck",
    "WebFetchErrorCode", "json_schema", "schema_text",
]

# --- the tables and their schemas ----------------------------------------------------------------

TABLE_MODELS: Mapping[str, type[Table]] = MappingProxyType({
    "models": ModelsTable, "roles": RolesTable, "content": ContentTable, "tools": ToolsTable,
    "stop_reasons": StopReasonsTable, "errors": ErrorsTable, "threads": ThreadsTable,
    "conformance": ConformanceTable,
    # These two live beside the code that reads them (context editing, the cost report).
    "context_management": ContextTable, "prices": PricesTable,
})


@lru_cache(maxsize=None)
def json_schema(name: str) -> Mapping[str, Any]:
    """The JSON Schema of table ``name`` (what ``spec/schemas/<name>.schema.json`` holds)."""
    return {**TABLE_MODELS[name].model_json_schema(schema_generator=_SchemaWriter), "title": f"{name}.yaml"}


def schema_text(name: str) -> str:
    """The committed form of :func:`json_schema`."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"
