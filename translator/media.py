"""Image and document sources → OpenAI content parts, within a per-request media budget.

Base64 data becomes Gemini inlineData through LiteLLM; an https URL becomes fileData, which Gemini
fetches itself: the proxy never opens it. What is allowed is content.yaml's (media types, url_sources).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from .errors import invalid_request
from .spec import Spec
from .tables import ContentLimits, UrlSources


@dataclass
class MediaBudget:
    """Per-request allowance of inline images and documents (content.yaml ``limits``, which the
    caller may override, e.g. from its configuration)."""

    max_count: int
    max_bytes: int
    used: int = 0

    @classmethod
    def from_limits(cls, limits: ContentLimits) -> "MediaBudget":
        return cls(limits.media_per_request, limits.media_bytes)

    def take(self, size: int, where: str) -> None:
        self.used += 1
        if self.used > self.max_count:
            raise invalid_request(f"{where}: too many images and documents in one request (at most {self.max_count}).")
        if size > self.max_bytes:
            raise invalid_request(f"{where}.data: {size} bytes of base64, more than the {self.max_bytes} allowed.")


def media_part(source: Any, where: str, block: Literal["image", "document"], spec: Spec,
               budget: MediaBudget) -> dict[str, Any]:
    """An image or document ``source`` (base64 or url) as an OpenAI content part: LiteLLM makes base64
    Gemini inlineData, and an https ``file_data`` with a ``format`` fileData, without opening the URL."""
    if not isinstance(source, dict):
        raise invalid_request(f"{where}: source must be an object.")
    content, kind = spec.content, source.get("type")
    allowed = content.image_media_types if block == "image" else content.document_media_types
    refused = content.refused_sources.get(kind) if isinstance(kind, str) else None
    if refused:
        raise invalid_request(f"{where}.type: {refused}.")
    if kind == "url":
        return _url_part(source, where, allowed, content.url_sources.default_media_types[block],
                         content.url_sources, budget)
    if kind != "base64":
        raise invalid_request(f"{where}.type: source type '{kind}' is not supported; use base64 or url.")
    media_type, data = source.get("media_type"), source.get("data")
    _check_media_type(media_type, where, allowed)
    if not isinstance(data, str) or not data:
        raise invalid_request(f"{where}.data: Field required, a non-empty base64 string.")
    budget.take(len(data), where)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request(f"{where}.data: not valid base64.") from None
    url = f"data:{media_type};base64,{data}"
    if str(media_type).startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "file", "file": {"file_data": url}}


def _check_media_type(media_type: Any, where: str, allowed: tuple[str, ...], how: str = "") -> None:
    if media_type not in allowed:
        raise invalid_request(f"{where}.media_type: '{media_type}'{how} is not supported by Gemini "
                              f"(supported: {', '.join(allowed)}).")


def _url_part(source: Mapping[str, Any], where: str, allowed: tuple[str, ...], default: str, rules: UrlSources,
              budget: MediaBudget) -> dict[str, Any]:
    """A URL source as Gemini fileData, its media type told without fetching (content.yaml url_sources)."""
    url = source.get("url")
    if not isinstance(url, str) or not url:
        raise invalid_request(f"{where}.url: Field required, a URL string.")
    if len(url) > rules.max_length or not url.startswith(rules.prefixes) or not _plain_url(url):
        raise invalid_request(f"{where}.url: must be a URL starting with {' or '.join(rules.prefixes)}, with a host "
                              f"and no spaces, of at most {rules.max_length} characters.")
    media_type = source.get("media_type")
    how = ""
    if media_type is None:
        name = urlsplit(url).path.rpartition("/")[2]
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        media_type = rules.extensions.get(extension, default)
        how = " (told by the URL's extension)" if extension in rules.extensions else " (the default for URLs)"
    _check_media_type(media_type, where, allowed, how)
    budget.take(0, where)
    return {"type": "file", "file": {"file_data": url, "format": media_type}}


def _plain_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:  # a malformed [IPv6] host
        return False
    return bool(host) and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)


__all__ = ["MediaBudget", "media_part"]
