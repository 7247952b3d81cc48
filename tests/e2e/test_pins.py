"""The client pins are exact and agree with each other and with the README (no network, no npm)."""
from __future__ import annotations

import json
import re

import anthropic

from tests.e2e import clients, latest

EXACT = re.compile(r"^\d+\.\d+\.\d+$")


def _claude_code_section() -> str:
    readme = (clients.REPO / "README.md").read_text()
    return readme[readme.index("## Use with Claude Code"):readme.index("## Model mapping")]


def test_npm_pins_are_exact_and_locked():
    pins = clients.pinned_npm()
    assert set(pins) == {clients.CLAUDE_CODE, clients.TS_SDK}
    assert all(EXACT.match(v) for v in pins.values()), pins
    lock = json.loads((clients.HERE / "package-lock.json").read_text())["packages"]
    assert lock[""]["dependencies"] == pins
    for name, version in pins.items():
        assert lock[f"node_modules/{name}"]["version"] == version
    # The native build Claude Code runs from is locked at the wrapper's version.
    assert lock[f"node_modules/{clients.CLAUDE_CODE}-linux-x64"]["version"] == pins[clients.CLAUDE_CODE]


def test_python_sdk_pin_is_exact_and_installed():
    pin = clients.pinned_python()
    assert EXACT.match(pin), pin
    if clients.mode() == "pinned":  # tests.e2e.latest runs these tests with the newest release instead
        assert anthropic.__version__ == pin


def test_readme_names_the_pinned_versions():
    section, pins = _claude_code_section(), latest.pinned_versions()
    for name, labels in latest.README_LABELS.items():
        for label in labels:
            assert label + pins[name] in section, label + pins[name]


def test_moving_the_pins_rewrites_every_version_in_the_readme():
    pins = latest.pinned_versions()
    newer = {name: "9.8.7" for name in pins}
    moved = latest.rewrite_readme(_claude_code_section(), pins, newer)
    for name, labels in latest.README_LABELS.items():
        for label in labels:
            assert label + "9.8.7" in moved and label + pins[name] not in moved
