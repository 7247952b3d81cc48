"""service/engines/litellm_adapter/ is the one LiteLLM boundary, and it refuses to start when LiteLLM moved."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from litellm.litellm_core_utils.litellm_logging import Logging
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import ModelResponseIterator, VertexGeminiConfig

from service.engines import litellm_adapter

ROOT = Path(__file__).resolve().parent.parent


def imports_litellm(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(name == "litellm" or name.startswith("litellm.") for name in names):
            return True
    return False


def test_only_the_adapter_imports_litellm():
    sources = sorted((ROOT / "service").rglob("*.py")) + sorted((ROOT / "translator").rglob("*.py"))
    assert [p.relative_to(ROOT).as_posix() for p in sources if imports_litellm(p)] == [
        "service/engines/litellm_adapter/__init__.py", "service/engines/litellm_adapter/gemini.py", "service/engines/litellm_adapter/probes.py",
        "service/engines/litellm_adapter/vertex.py"]


def test_the_pinned_litellm_has_everything_the_proxy_relies_on():
    litellm_adapter.check()


@pytest.mark.parametrize(("owner", "name", "what"), [
    (Logging, "_success_handler_body", "success logging"),
    (ModelResponseIterator, "chunk_parser", "stream lines"),
    (VertexGeminiConfig, "_calculate_usage", "(usage)"),
    (ModelResponseIterator, "_check_streaming_error", "inside a stream"),
])
def test_a_moved_internal_stops_start_up_naming_it_alone(monkeypatch, owner, name, what):
    monkeypatch.delattr(owner, name)
    with pytest.raises(litellm_adapter.LiteLLMMoved) as caught:
        litellm_adapter.check()
    message = str(caught.value)
    assert f"LiteLLM {litellm_adapter.VERSION}" in message and what in message, message
    assert f"{owner.__name__}.{name}" in message or f"{name} " in message, message
    assert "litellm==1.110.2" in message
    others = {"_calculate_usage", "get_assistant_content_message", "_check_streaming_error", "chunk_parser"} - {name}
    assert not [other for other in others if other in message.split("(needed for")[0]], message


def test_a_probe_that_raises_says_what_it_raised(monkeypatch):
    """LiteLLM 1.110's iterator read ``logging_obj.litellm_params``; a probe failing that way says so."""
    monkeypatch.setattr(ModelResponseIterator, "__init__", lambda self, **kwargs: kwargs["logging_obj"].moved)
    with pytest.raises(litellm_adapter.LiteLLMMoved, match="ModelResponseIterator.*AttributeError.*moved"):
        litellm_adapter.check()


def test_an_app_is_not_built_on_a_moved_litellm(monkeypatch):
    from service.app import create_app
    from service.config import load_settings
    monkeypatch.delattr(ModelResponseIterator, "chunk_parser")
    with pytest.raises(litellm_adapter.LiteLLMMoved):
        create_app(load_settings({}, None))


def test_the_translator_tests_do_not_need_the_app_or_litellm():
    """conftest.py (and what it imports) builds no app, so a LiteLLM that fails the probe does not stop the
    pure translator tests from running."""
    code = ("import sys, tests.conftest, tests.test_translator; "
            "print(sorted(m for m in ('service.app', 'litellm') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and found.stdout.strip() == "[]", found.stdout + found.stderr
