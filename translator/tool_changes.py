"""Mid-conversation tool changes: the tools Gemini is offered after every tool_addition and tool_removal.

``tool_addition`` / ``tool_removal`` blocks in ``role: "system"`` messages change the request's
``tools`` from where they sit onward; Gemini sees one set of function declarations per request, so
the proxy offers the set as it stands at the end of ``messages``. Every tool the conversation ever
knew is still planned (and aliased), so history calls of a removed tool keep their Gemini names.
The error texts follow Anthropic's, which Claude Code matches: "tool_addition ... references",
"is already used by a", "are not available on this platform".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import invalid_request
from .tables import ToolsTable

_CHANGES = ("tool_addition", "tool_removal")
_MCP_REFERENCES = ("mcp_tool_reference", "mcp_toolset_reference")


@dataclass(frozen=True)
class ToolSet:
    """The tools to plan (the request's, then inline definitions) and the names offered to Gemini
    (None: no change was made, every tool is offered)."""

    tools: list[dict] | None
    offered: frozenset[str] | None
    defined_from: int  # tools[defined_from:] are inline definitions
    places: tuple[str, ...] = ()  # where each inline definition sits (for error messages)


def _tool_name(tool: Any) -> str | None:
    """A tool's name as plan_tools counts it (server tools without a name go by their type)."""
    if not isinstance(tool, dict):
        return None
    name = tool.get("name", tool.get("type"))
    return name if isinstance(name, str) else None


@dataclass
class _Changes:
    table: ToolsTable
    known: list[dict]
    index: dict[str, int]
    offered: set[str]
    places: list[str]
    base: int  # known[:base] are the request's tools
    count: int = 0

    def apply(self, block: dict, where: str) -> None:
        self.count += 1
        if self.count > self.table.limits.tool_changes:
            raise invalid_request(f"{where}: more than the {self.table.limits.tool_changes} tool_addition and "
                                  "tool_removal blocks allowed in one request (tools.yaml limits.tool_changes).")
        kind, tool = block["type"], block["tool"]
        ref = tool.get("type")
        if ref in _MCP_REFERENCES:
            raise invalid_request(f"{where}.tool: {ref} in {kind} blocks are not available on this platform: this "
                                  "proxy connects to no MCP server; declare the tool in `tools` and use a tool_reference.")
        if ref == "tool_reference":
            self._reference(kind, tool.get("name"), where)
        elif ref == "tool_definition" and kind == "tool_addition":
            self._definition(tool.get("definition"), f"{where}.tool.definition")
        else:
            allowed = "tool_reference or tool_definition" if kind == "tool_addition" else "tool_reference"
            raise invalid_request(f"{where}.tool.type: a {kind} takes a {allowed}, got {ref!r}.")

    def _reference(self, kind: str, name: Any, where: str) -> None:
        if not isinstance(name, str) or name not in self.index:
            raise invalid_request(f"{where}.tool.name: {kind} references {name!r}, which names no tool declared in "
                                  "`tools` nor defined by an earlier tool_addition.")
        (self.offered.add if kind == "tool_addition" else self.offered.discard)(name)

    def _definition(self, definition: Any, where: str) -> None:
        if not isinstance(definition, dict):
            raise invalid_request(f"{where}: Field required, a tool definition object (what a `tools` entry holds).")
        name = definition.get("name")
        if not isinstance(name, str) or not re.fullmatch(self.table.names.anthropic, name):
            raise invalid_request(f"{where}.name: must match {self.table.names.anthropic}, got {name!r}.")
        if name in self.index:
            same = self.known[self.index[name]] == definition
            if not same and (self.index[name] < self.base or name in self.offered):
                raise invalid_request(f"{where}.name: '{name}' is already used by a tool the conversation offers "
                                      "(tool_addition of a different definition); remove it first or pick another name.")
            if not same:
                self.known[self.index[name]] = definition  # a removed inline tool, defined anew
        else:
            if len(self.known) >= self.table.limits.tools:
                raise invalid_request(f"{where}: more than the {self.table.limits.tools} tools allowed, inline "
                                      "definitions included (tools.yaml limits.tools).")
            self.index[name] = len(self.known)
            self.known.append(definition)
            self.places.append(where)
        self.offered.add(name)


def changed_tools(tools: list[dict] | None, messages: Sequence[Any], table: ToolsTable) -> ToolSet:
    """The request's ``tools`` with every tool change of its system ``messages`` applied, in order.

    Raises AnthropicError (400) for a reference to an unknown tool, an MCP reference, a name clash,
    or more changes or tools than tools.yaml's limits."""
    base = list(tools or ())
    changes: _Changes | None = None
    for i, message in enumerate(messages):
        if message.role != "system" or isinstance(message.content, str):
            continue
        for j, block in enumerate(message.content):
            if isinstance(block, dict) and block.get("type") in _CHANGES and isinstance(block.get("tool"), dict):
                if changes is None:
                    index = {n: k for k, n in enumerate(map(_tool_name, base)) if n is not None}
                    changes = _Changes(table, list(base), index, set(index), [], len(base))
                changes.apply(block, f"messages.{i}.content.{j}")
    if changes is None:
        return ToolSet(tools, None, len(base))
    return ToolSet(changes.known, frozenset(changes.offered), len(base), tuple(changes.places))


def definition_place(message: str, toolset: ToolSet) -> str:
    """A plan error about ``tools.<n>`` told at the tool_addition that defined tool n, if it was one."""
    match = re.match(r"tools\.(\d+)", message)
    if match is None or int(match.group(1)) < toolset.defined_from:
        return message
    return toolset.places[int(match.group(1)) - toolset.defined_from] + message[match.end():]


__all__ = ["ToolSet", "changed_tools", "definition_place"]
