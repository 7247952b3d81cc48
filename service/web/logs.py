"""Logging set-up and the access log: one JSON line per request, no bodies."""
from __future__ import annotations

import json
import logging
import sys
from typing import Any

from ..config import Settings

_access = logging.getLogger("proxy.access")


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger("proxy")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(settings.log_level)
    # LiteLLM's own warnings (deprecations, blank-text notices) are noise in a proxy's log.
    logging.getLogger("LiteLLM").setLevel(max(logging.ERROR, logging.getLevelName(settings.log_level)))


def access_log(request_id: str, method: str, path: str, status: int, seconds: float, fields: dict[str, Any]) -> None:
    if _access.isEnabledFor(logging.INFO):
        _access.info(json.dumps({"request_id": request_id, "method": method, "path": path, "status": status,
                                 "ms": round(seconds * 1000, 1), **fields}, default=str))
