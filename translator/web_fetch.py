"""Anthropic's ``web_fetch`` server tool, run by Gemini's URL context tool.

Gemini reads the pages named in the prompt itself and reports which in ``urlContextMetadata``; those
reports become ``server_tool_use`` / ``web_fetch_tool_result`` pairs, as Google Search grounding becomes
web search blocks (response.py). Gemini knows nothing of the tool's ``max_uses`` or domain rules, so
the proxy applies them to the reports: a page past ``max_uses`` is ``max_uses_exceeded``, one outside
``allowed_domains`` or inside ``blocked_domains`` is ``url_not_allowed`` (Gemini may still have read it:
the proxy cannot stop that, it only withholds the page from the answer's blocks). Gemini returns no
page text, so a fetched page's document is empty: nothing is invented.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from .chunks import field
from .errors import invalid_request
from .tables import ToolsTable

SUCCESS = "URL_RETRIEVAL_STATUS_SUCCESS"


def check_web_fetch(tool: Mapping[str, Any] | None) -> None:
    """Refuse what Anthropic refuses in a web_fetch tool: both domain lists, a max_uses below 1, a domain
    that is not a string or carries a scheme."""
    if not tool:
        return
    if tool.get("allowed_domains") and tool.get("blocked_domains"):
        raise invalid_request("tools: a web_fetch tool may set allowed_domains or blocked_domains, not both.")
    uses = tool.get("max_uses")
    if uses is not None and (not isinstance(uses, int) or isinstance(uses, bool) or uses < 1):
        raise invalid_request(f"tools: web_fetch max_uses must be a positive integer, got {uses!r}.")
    for name in ("allowed_domains", "blocked_domains"):
        for domain in tool.get(name) or ():
            if not isinstance(domain, str) or not domain or "://" in domain:
                raise invalid_request(f"tools: web_fetch {name} entries are domains without a scheme "
                                      f"(example.com, docs.example.com/api), got {domain!r}.")


def domain_allowed(url: str, tool: Mapping[str, Any]) -> bool:
    """Whether ``url`` passes the tool's allowed / blocked domains (a domain covers its subdomains, a
    domain with a path the pages under it)."""
    allowed, blocked = tool.get("allowed_domains"), tool.get("blocked_domains")
    if allowed:
        return any(_covers(rule, url) for rule in allowed)
    return not any(_covers(rule, url) for rule in blocked or ())


def _covers(rule: str, url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    domain, _, path = rule.lower().partition("/")
    if host != domain and not host.endswith("." + domain):
        return False
    return not path or parts.path.lstrip("/").startswith(path)


def fetched_pages(metadata: Any) -> list[tuple[str, str]]:
    """(url, Gemini's retrieval status) of each page in urlContextMetadata reports, each url once."""
    pages: dict[str, str] = {}
    for report in metadata or ():
        for page in field(report, "urlMetadata", []):
            url = field(page, "retrievedUrl")
            if isinstance(url, str) and url and url not in pages:
                pages[url] = str(field(page, "urlRetrievalStatus", "URL_RETRIEVAL_STATUS_UNSPECIFIED"))
    return list(pages.items())


def fetch_blocks(metadata: Any, tool: Mapping[str, Any] | None, table: ToolsTable,
                 message_id: str) -> tuple[list[dict[str, Any]], int]:
    """The web fetch blocks for Gemini's URL context reports, and how many fetches count as used."""
    if tool is None:
        return [], 0
    blocks: list[dict[str, Any]] = []
    limit = tool.get("max_uses")
    used = 0
    for n, (url, status) in enumerate(fetched_pages(metadata)):
        tool_id = f"srvtoolu_{message_id.removeprefix('msg_')}_f{n}"
        blocks.append({"type": "server_tool_use", "id": tool_id, "name": "web_fetch", "input": {"url": url}})
        if limit is not None and used >= limit:
            content = _error("max_uses_exceeded")
        else:
            used += 1
            if not domain_allowed(url, tool):
                content = _error("url_not_allowed")
            elif status != SUCCESS:
                content = _error(table.url_retrieval_errors.get(status, "url_not_accessible"))
            else:
                content = {"type": "web_fetch_result", "url": url, "retrieved_at": None,
                           "content": {"type": "document", "title": None, "citations": None,
                                       "source": {"type": "text", "media_type": "text/plain", "data": ""}}}
        blocks.append({"type": "web_fetch_tool_result", "tool_use_id": tool_id, "content": content})
    return blocks, used


def _error(code: str) -> dict[str, Any]:
    return {"type": "web_fetch_tool_result_error", "error_code": code}
