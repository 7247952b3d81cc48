"""Outside code uses the translator through ``translator/__init__.py`` only.

``service/``, ``bench/`` and ``tests/`` may ``import translator`` and take the names in
``translator.__all__``; they may not import ``translator.<module>`` (``import translator.x``,
``from translator.x import ...``, ``from translator import <module>``) or reach a module through
the package (``translator.x.name``).

The one exception is a white-box unit test of private modules, which says so by its name: a
test file may import the modules its file name names, word by word (``test_tools.py`` →
``translator.tools``; ``test_thinking_and_signatures.py`` → ``translator.thinking`` and
``translator.signatures``; ``test_tools_bounds.py`` → ``translator.tools``), and
``translator.spec`` and ``translator.tables``, whose ``load_table`` and table models give a unit test
one table as the YAML has it; ``test_tables.py``, which checks that every kind a table may name has a
handler, reads the handlers' dispatch tables in every module. Any other test goes through the
public surface, as a library user does.
"""
from __future__ import annotations

import ast
from pathlib import Path

import translator

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = set(translator.__all__)
MODULES = {path.stem for path in (ROOT / "translator").glob("*.py")} - {"__init__"}
UNIT_TEST_TABLES = {"spec", "tables"}
# The check that every kind a table may name has a handler reads the handlers' own dispatch tables.
READS_EVERY_MODULE = {"test_tables.py"}


def allowed_modules(path: Path) -> set[str]:
    """The private modules a file may import: those its name names, if it is a test file."""
    if path.relative_to(ROOT).parts[0] != "tests" or not path.name.startswith("test_"):
        return set()
    if path.name in READS_EVERY_MODULE:
        return MODULES | {"__main__"}
    return (set(path.stem.split("_")[1:]) & MODULES) | UNIT_TEST_TABLES


def offences(source: str, path: Path) -> list[str]:
    """Each import of, or reach into, a translator module that ``path`` may not make."""
    allowed = allowed_modules(path)
    found: list[str] = []

    def private(module: str, line: int) -> None:
        if module not in allowed:
            found.append(f"{path.relative_to(ROOT)}:{line}: translator.{module}")

    tree = ast.parse(source)
    imports_package = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "translator":
                    imports_package = True
                elif alias.name.startswith("translator."):
                    private(alias.name.split(".")[1], node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("translator."):
                private(node.module.split(".")[1], node.lineno)
            elif node.module == "translator":
                for alias in node.names:
                    if alias.name not in PUBLIC:
                        private(alias.name, node.lineno)
    for node in ast.walk(tree) if imports_package else ():
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "translator"
                and node.attr not in PUBLIC and not node.attr.startswith("__")):
            private(node.attr, node.lineno)
    return found


def outside_sources() -> list[Path]:
    return sorted(path for folder in ("service", "bench", "tests") for path in (ROOT / folder).rglob("*.py"))


def test_outside_code_imports_only_the_public_surface():
    found = [o for path in outside_sources() for o in offences(path.read_text(encoding="utf-8"), path)]
    assert found == []


def test_the_check_finds_each_way_in():
    source = ("import translator\nimport translator.stream\nfrom translator.response import usage\n"
              "from translator import collect, stream\nfrom translator import tools as t\n"
              "translator.stream.StreamProtocolError\ntranslator.collect([])\n")
    assert offences(source, ROOT / "service" / "x.py") == [
        "service/x.py:2: translator.stream", "service/x.py:3: translator.response",
        "service/x.py:4: translator.stream", "service/x.py:5: translator.tools", "service/x.py:6: translator.stream"]
    # A test named after a module may import it (and spec); no other.
    unit = ROOT / "tests" / "test_tools_bounds.py"
    assert offences("from translator.tools import plan_tools\nfrom translator.spec import load_table\n", unit) == []
    assert offences("from translator.stream import StreamTranslator\n", unit) == [
        "tests/test_tools_bounds.py:1: translator.stream"]
    assert offences("from translator.tools import plan_tools\n", ROOT / "bench" / "test_tools.py") == [
        "bench/test_tools.py:1: translator.tools"]


def test_every_public_name_resolves():
    assert all(hasattr(translator, name) for name in translator.__all__)
    assert len(set(translator.__all__)) == len(translator.__all__)
