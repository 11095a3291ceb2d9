"""The packages form layers: model at the bottom, server on it, streamlit_app on top (realcheck composes all).

Checked on the source, every import at any depth (function-local ones too), so a lazy import cannot hide an
upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each package and the packages it must never import.
FORBIDDEN = {
    "model": {"server", "streamlit_app", "realcheck"},
    "server": {"streamlit_app", "realcheck"},
    "streamlit_app": {"realcheck"},
}


def imported_packages(source: str) -> set[str]:
    """Top-level package names of every import in `source`, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_imported_packages_sees_imports_inside_functions():
    source = "import os\n\ndef later():\n    from server.config import ServerConfig\n    import streamlit_app.app\n"
    assert imported_packages(source) == {"os", "server", "streamlit_app"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_a_layer_above_it(package):
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_packages(path.read_text(encoding="utf-8")) & FORBIDDEN[package])
    ]
    assert not offences, offences
