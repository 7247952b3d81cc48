"""The checks of Claude Code's that the proxy's error texts are written for (tests/test_conformance.py's CC_*
regexes) are those of the Claude Code the e2e suite installs, not a memory of them."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_conformance import CC_SOURCES

pytestmark = pytest.mark.e2e


def test_claude_code_still_has_these_checks(node_modules: Path):
    text = (node_modules / "@anthropic-ai" / "claude-code-linux-x64" / "claude").read_bytes()
    for source in CC_SOURCES:
        assert source.encode() in text, source
