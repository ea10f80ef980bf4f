"""The client is what an integrator installs: of the server it reads the API's response models
(``api.models``), nothing else."""

import ast
from pathlib import Path

from tests.test_layers import ROOT

SERVER = ("api", "services", "db", "workflows", "activities", "domain", "config", "worker")


def server_imports(path: Path) -> list[str]:
    """Every module of the server the file imports, but ``api.models``."""
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return [
        m
        for m in modules
        if m.split(".")[0] in SERVER and not (m == "api.models" or m.startswith("api.models."))
    ]


def test_the_client_imports_only_the_apis_models_of_the_server():
    files = sorted((ROOT / "tollgate_client").rglob("*.py"))
    assert files
    assert {str(p.relative_to(ROOT)): server_imports(p) for p in files if server_imports(p)} == {}
