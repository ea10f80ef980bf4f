"""The layers stay layered: nothing below the API imports it, and the domain imports only itself
(and libraries). Read from the source with ``ast``, so an import inside a function or a
``workflow.unsafe.imports_passed_through()`` block counts too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BELOW_THE_API = ("activities", "services", "workflows", "domain", "db")
APPLICATION = ("api", "db", "services", "activities", "workflows")


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in the file."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.split(".")[0])
    return packages


def offending_imports(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no modules found under {layer}/"
    return [
        f"{path.relative_to(ROOT)} imports {package}"
        for path in files
        for package in sorted(imported_packages(path) & set(forbidden))
    ]


@pytest.mark.parametrize("layer", BELOW_THE_API)
def test_no_module_below_the_api_imports_the_api(layer: str):
    assert offending_imports(layer, ("api",)) == []


def test_the_domain_imports_no_other_part_of_the_application():
    assert offending_imports("domain", APPLICATION) == []


@pytest.mark.parametrize("layer", ("services", "db"))
def test_services_and_the_database_layer_import_no_activity(layer: str):
    """Activities call services (and routes do): a service reaching into an activity module
    would tie the HTTP layer to the worker's code."""
    assert offending_imports(layer, ("activities",)) == []
