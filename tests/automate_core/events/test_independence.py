"""The events package stands alone: the engine subscribes to it, never the other way round."""

import ast
from pathlib import Path

import automate_core.events

FORBIDDEN = ("automate_core.workflows", "automate_core.executions")
PACKAGE = Path(automate_core.events.__file__).parent


def imported_modules(source: str) -> set[str]:
    """Every module a source file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_events_module_imports_the_workflows_or_executions_packages():
    offending = {
        f"{path.name}: {module}"
        for path in sorted(PACKAGE.glob("*.py"))
        for module in imported_modules(path.read_text())
        if module.startswith(FORBIDDEN)
    }
    assert offending == set()


def test_the_check_finds_an_import_of_the_engine_inside_a_function():
    source = "def f():\n    from automate_core import workflows\n"
    assert "automate_core.workflows" in imported_modules(source)
