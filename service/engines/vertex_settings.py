"""Vertex AI's settings, read from the environment without I/O (service.config calls these; the
credentials themselves are loaded by service.engines.vertex when first used).

A Vertex deployment is a JSON descriptor: ``{"api_key": ...}`` for express mode, or
``{"credentials": path, "project": ..., "location": ...}`` (``credentials`` empty: Application
Default Credentials)."""
from __future__ import annotations

import json
from typing import Callable

DEFAULT_LOCATION = "global"


def _split(value: str | None) -> list[str]:
    return list(dict.fromkeys((value or "").replace(",", " ").split()))


def deployments(get: Callable[[str], str | None]) -> tuple[str, ...]:
    """The Vertex deployments the environment names: one per express key (VERTEXAI_API_KEY(S)), and
    one per (credential file, project) of VERTEXAI_CREDENTIALS and GOOGLE_APPLICATION_CREDENTIALS
    × VERTEXAI_PROJECT (several of each pool them); Application Default Credentials when no file is
    named and no express key (or a project is named)."""
    location = get("VERTEXAI_LOCATION") or DEFAULT_LOCATION
    keys = _split(get("VERTEXAI_API_KEYS")) + _split(get("VERTEXAI_API_KEY"))
    files = _split(get("VERTEXAI_CREDENTIALS")) + _split(get("GOOGLE_APPLICATION_CREDENTIALS"))
    projects = _split(get("VERTEXAI_PROJECT")) or [""]
    found = [json.dumps({"api_key": key}) for key in dict.fromkeys(keys)]
    if files or projects != [""] or not keys:
        found += [json.dumps({"credentials": path, "project": project, "location": location})
                  for path in (dict.fromkeys(files) or [""]) for project in projects]
    return tuple(found)


def secrets(get: Callable[[str], str | None]) -> tuple[str, ...]:
    """The Vertex secrets the environment holds that must never be shown (express keys)."""
    return tuple(_split(get("VERTEXAI_API_KEYS")) + _split(get("VERTEXAI_API_KEY")))


def has_credentials(get: Callable[[str], str | None]) -> bool:
    """Whether the environment names a Vertex credential (an express key, a credential file or a
    project for Application Default Credentials): the launcher's check counts it as Gemini's."""
    return any(get(name) for name in ("VERTEXAI_API_KEY", "VERTEXAI_API_KEYS", "VERTEXAI_CREDENTIALS",
                                      "GOOGLE_APPLICATION_CREDENTIALS", "VERTEXAI_PROJECT"))
