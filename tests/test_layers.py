"""The packages form layers: model at the bottom, server on it, streamlit_app on top (realcheck composes all).

Checked on the source, every import at any depth (function-local ones too), so a lazy import cannot hide an
upward dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each package and the packages it must never import.
FORBIDDEN = {
    "model": {"server", "streamlit_app", "realcheck"},
    "server": {"streamlit_app", "realcheck"},
    "streamlit_app": {"realcheck"},
}


FACES = ("model", "server", "streamlit_app")
# Inside model/: its wings in layers, each importing only its own layer and those before it. The loose
# modules at model/'s top are the core (errors, labels, settings, flags) that all may use, except
# `commands` (the package's CLI) and `__init__` (its lazy `Detector`), which sit on top.
WING_LAYERS = (("data", "networks"), ("artifacts",), ("scoring",), ("evaluation",), ("training",))


def imported_modules(source: str) -> list[str]:
    """Every absolute import in `source`, at any depth; `from a import b` gives `a.b` too, since b may be a
    module."""
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return modules


def imported_layers(source: str) -> set[str]:
    """The RealCheck layer of every import in `source`, at any depth: `realcheck.server.app` is `server`;
    `realcheck` and `realcheck.cli` (the entry point composing every face) are `realcheck`. A bare `model`,
    `server` or `streamlit_app` (not an import name since the namespace) counts as `bare <name>`."""
    layers = set()
    for module in imported_modules(source):
        parts = module.split(".")
        if parts[0] in FACES:
            layers.add(f"bare {parts[0]}")
        elif parts[0] == "realcheck":
            layers.add(parts[1] if len(parts) > 1 and parts[1] in FACES else "realcheck")
    return layers


def test_imported_layers_sees_imports_inside_functions():
    source = (
        "import os\nfrom realcheck.model.labels import AI\n\ndef later():\n"
        "    from realcheck.server.config import ServerConfig\n    import realcheck.cli\n    import model\n"
    )
    assert imported_layers(source) == {"model", "server", "realcheck", "bare model"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_a_layer_above_it(package):
    forbidden = FORBIDDEN[package] | {f"bare {face}" for face in FACES}
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_layers(path.read_text(encoding="utf-8")) & forbidden)
    ]
    assert not offences, offences


def imported_wings(source: str) -> set[str]:
    """The model/ wing (or loose module) of every `realcheck.model.*` import in `source`, at any depth."""
    return {
        module.split(".")[2] for module in imported_modules(source) if module.startswith("realcheck.model.")
    }


def wing_layer(name: str) -> int:
    """0 for the core modules, then one more per layer of WING_LAYERS; `commands` and `__init__` on top."""
    if name in {"commands", "__init__"}:
        return len(WING_LAYERS) + 1
    return next((index + 1 for index, layer in enumerate(WING_LAYERS) if name in layer), 0)


def test_imported_wings_sees_every_form_of_import_at_any_depth():
    source = (
        "from realcheck.model import errors\nimport realcheck.model.data.imaging\n\ndef later():\n"
        "    from realcheck.model.training.flows import train\n    from realcheck.server.config import X\n"
    )
    assert imported_wings(source) == {"errors", "data", "training"}
    assert wing_layer("settings") == 0 < wing_layer("data") == wing_layer("networks") < wing_layer("scoring")
    assert wing_layer("scoring") < wing_layer("evaluation") < wing_layer("training") < wing_layer("commands")


def test_model_wings_import_only_their_own_layer_and_those_below():
    offences = []
    for path in sorted((ROOT / "model").rglob("*.py")):
        relative = path.relative_to(ROOT / "model")
        if relative.parts[0] == "bundled":
            continue
        own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        for wing in imported_wings(path.read_text(encoding="utf-8")):
            if wing_layer(wing) > wing_layer(own):
                offences.append(f"model/{relative} ({own}) imports {wing}")
    assert not offences, offences


def test_model_is_in_wings_with_few_loose_modules():
    wings = sorted(p.name for p in (ROOT / "model").iterdir() if (p / "__init__.py").is_file())
    loose = sorted(p.name for p in (ROOT / "model").glob("*.py"))
    assert set(wings) == {wing for layer in WING_LAYERS for wing in layer}
    assert len(loose) <= 8, loose


def test_no_code_anywhere_imports_the_bare_folder_names():
    # Code strings that tests and scripts run in child processes count too: under a wheel only realcheck.* exists.
    bare = re.compile(r"(?m)(?:^\s*|[;\"'(]\s*)(?:from|import)\s+(?:model|server|streamlit_app)\b(?!\s*=)")
    offences = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for folder in ("model", "server", "streamlit_app", "realcheck", "scripts", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for match in bare.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offences, offences


def test_every_realcheck_module_is_a_plain_file_on_the_path_for_editors_and_type_checkers():
    # What pyright and editors do: look for realcheck/model/x.py under the path's folders, with no import
    # hook. setuptools' default editable install maps the faces' folders only through a hook (pyright then
    # resolved 0 of server/service.py's 10 realcheck imports); scripts/setup.sh installs in strict mode.
    import sys

    installed = [Path(entry) for entry in sys.path if "site-packages" in entry or "__editable__" in entry]
    imported = {
        node.module
        for path in sorted(ROOT.glob("server/*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        and node.level == 0
        and (node.module or "").startswith("realcheck.")
    }
    assert len(imported) > 10
    for module in imported:
        relative = Path(*module.split("."))
        assert any(
            (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()
            for root in installed
        ), f"{module} is not a file under any installed path: run scripts/setup.sh"
    assert any((root / "realcheck" / "py.typed").is_file() for root in installed)
