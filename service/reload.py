"""Tables re-read without a restart: SIGHUP (``gemini-proxy reload``) makes each worker load ``spec/`` and the
model settings (BIG_MODEL, SMALL_MODEL, PROVIDER_PREFIXES, SPEC_DIR from the environment and .env) again.

The new tables are loaded and validated completely before anything changes; a broken edit keeps the tables
in use and logs why. The swap is one assignment of ``proxy.spec``: an answer in flight holds the tables it
started with (its own reference, taken when it began), so a stream crossing a reload ends as it began."""
from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace
from typing import Any

import translator
from translator import Spec

from .config import Settings, load_settings

log = logging.getLogger("proxy")
MODEL_SETTINGS = ("big_model", "small_model", "provider_prefixes", "spec_dir")


def load_tables(settings: Settings) -> Spec:
    return translator.load_spec(settings.spec_dir or translator.DEFAULT_SPEC_DIR, big_model=settings.big_model,
                                small_model=settings.small_model,
                                provider_prefixes=settings.provider_prefixes or None)
