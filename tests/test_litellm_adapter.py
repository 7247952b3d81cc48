"""service/litellm_adapter/ is the one LiteLLM boundary, and it refuses to start when LiteLLM moved."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from litellm.litellm_core_utils.litellm_logging import Logging
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import ModelResponseIterator

from service import litellm_adapter

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
        "service/litellm_adapter/__init__.py", "service/litellm_adapter/gemini.py"]


def test_the_pinned_litellm_has_everything_the_proxy_relies_on():
    litellm_adapter.check()


@pytest.mark.parametrize(("owner", "name", "what"), [
    (Logging, "_success_handler_body", "success logging"),
    (ModelResponseIterator, "chunk_parser", "grounding"),
])
def test_a_moved_internal_stops_start_up_naming_the_version(monkeypatch, owner, name, what):
    monkeypatch.delattr(owner, name)
    with pytest.raises(litellm_adapter.LiteLLMMoved) as caught:
        litellm_adapter.check()
    assert f"LiteLLM {litellm_adapter.VERSION}" in str(caught.value) and what in str(caught.value)
    assert "litellm==1.106.2" in str(caught.value)


def test_an_app_is_not_built_on_a_moved_litellm(monkeypatch):
    from service.app import create_app
    from service.config import load_settings
    monkeypatch.delattr(ModelResponseIterator, "chunk_parser")
    with pytest.raises(litellm_adapter.LiteLLMMoved):
        create_app(load_settings({}, None))
