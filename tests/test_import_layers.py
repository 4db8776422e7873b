"""The packages import one another in one direction only (docs/architecture.md, import rules).

Reads every module's import statements (module level and inside functions) without
running them: the model side ``latentcv.cv_models`` imports neither ``latentcv.export``
nor the application layer ``latentcv.cv_models.app``; ``latentcv.export`` imports neither
the training loop nor the application layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"cv_models": "latentcv.cv_models", "export": "latentcv.export"}


def module_name(path: Path) -> str:
    """``cv_models/data/pbc.py`` -> ``latentcv.cv_models.data.pbc`` (a package: its name)."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, name: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module the source of module ``name`` imports, relative
    imports resolved (``from a import b`` yields ``a`` and ``a.b``)."""
    package = name if is_package else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


APP = "latentcv.cv_models.app"
RULES = [  # (modules checked, packages they must not import, why)
    (
        lambda m: within(m, "latentcv.cv_models") and not within(m, APP),
        ("latentcv.export", APP),
        "the model side is below export and the commands",
    ),
    (
        lambda m: within(m, "latentcv.export"),
        ("latentcv.cv_models.training", APP),
        "deployment never loads the training loop or the commands",
    ),
]


@pytest.mark.parametrize("path", modules("cv_models") + modules("export"), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_follow_the_layers(path: Path) -> None:
    name = module_name(path)
    for applies, forbidden, why in RULES:
        if not applies(name):
            continue
        imported = imported_modules(path.read_text(), name, path.name == "__init__.py")
        bad = sorted(m for m in imported if any(within(m, f) for f in forbidden))
        assert not bad, f"{name} imports {bad}: {why} (docs/architecture.md, import rules)"


def test_the_reader_resolves_relative_and_local_imports() -> None:
    """A breach written as a relative import, or inside a function, is seen too."""
    source = "from ...export import deploy\n\ndef f():\n    from ..app.cli import main\n"
    found = imported_modules(source, "latentcv.cv_models.data.probe")
    assert {"latentcv.export.deploy", "latentcv.cv_models.app.cli.main"} <= found
    assert imported_modules("from . import frames", "latentcv.cv_models.data", is_package=True) >= {
        "latentcv.cv_models.data.frames"
    }


# The layers of the model side (docs/architecture.md, "Import rules"): a module imports
# only from its own layer or a lower one. Layer 0 is the native runtime that training and
# deployment both load (`native/`: the compiled core's only importer `native/core.py`, the
# operator library, where native files live) and the atomic file writer; config_reference
# (the docs/config.md generator) and the application layer are above everything.
LAYERS = {
    0: ["native", "atomic_write", "__init__"],
    1: [
        "graphs",
        "units",
        "config",
        "loss_terms",
        "data",
        "synthetic",
        "systems",
        "system_file",
        "engines",
        "generate",
        "walkers",
    ],
    2: ["layers"],
    3: ["model", "autoencoder"],
    4: ["batching", "checkpoint", "analysis"],
    5: ["training", "distributed", "diagnostics", "config_reference"],
}


def layer_of(name: str) -> int | None:
    """The layer of a ``latentcv.cv_models.*`` module (None outside the model side)."""
    if not within(name, "latentcv.cv_models") or within(name, APP):
        return None
    parts = name.split(".")
    top = parts[2] if len(parts) > 2 else "__init__"
    return next((k for k, names in LAYERS.items() if top in names), None)


@pytest.mark.parametrize("path", modules("cv_models"), ids=lambda p: str(p.relative_to(ROOT)))
def test_model_side_imports_only_its_own_layer_or_lower(path: Path) -> None:
    name = module_name(path)
    own = layer_of(name)
    if own is None:
        return
    imported = imported_modules(path.read_text(), name, path.name == "__init__.py")
    higher = sorted(m for m in imported if (layer_of(m) or -1) > own)
    assert not higher, f"{name} (layer {own}) imports {higher} from a higher layer (docs/architecture.md)"


def test_every_model_side_module_has_a_layer() -> None:
    """A new module must be placed in a layer (and the docs say which)."""
    missing = sorted(
        module_name(p)
        for p in modules("cv_models")
        if layer_of(module_name(p)) is None and not within(module_name(p), APP)
    )
    assert not missing, f"modules in no layer of tests/test_import_layers.py LAYERS: {missing}"


def test_only_core_imports_the_compiled_module() -> None:
    importers = sorted(
        module_name(p)
        for p in modules("cv_models") + modules("export")
        if any(
            within(m, "latentcv.cv_models._lib")
            for m in imported_modules(p.read_text(), module_name(p), p.name == "__init__.py")
        )
    )
    assert importers == ["latentcv.cv_models.native.core"], importers


@pytest.mark.parametrize("path", modules("export"), ids=lambda p: str(p.relative_to(ROOT)))
def test_export_imports_layers_one_to_four_only(path: Path) -> None:
    name = module_name(path)
    imported = imported_modules(path.read_text(), name, path.name == "__init__.py")
    above = sorted(m for m in imported if (layer_of(m) or 0) > 4)
    assert not above, f"{name} imports {above}: export uses layers 1-4 only (docs/architecture.md)"


@pytest.mark.parametrize("path", modules("cv_models") + modules("export"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_latentcv_import_names_a_module_that_exists(path: Path) -> None:
    """Imports inside functions run late: a moved module must not leave one pointing nowhere."""
    name = module_name(path)
    missing = []
    for m in imported_modules(path.read_text(), name, path.name == "__init__.py"):
        if m == "latentcv" or not within(m, "latentcv") or within(m, "latentcv.cv_models._lib"):
            continue
        parent, _, attr = m.rpartition(".")
        if not (_is_package_path(m) or _module_defines(parent, attr)):
            missing.append(m)
    assert not missing, f"{name} imports {sorted(missing)}, which do not exist"


def _is_package_path(name: str) -> bool:
    """``latentcv.a.b`` names a module or package of the checkout."""
    rel = name.split(".")[1:]
    if not rel or rel[0] not in PACKAGES:
        return False
    base = ROOT.joinpath(*rel)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _module_defines(module: str, attr: str) -> bool:
    """Module ``module`` of the checkout binds ``attr`` at its top level (def, class, assignment, import)."""
    if not _is_package_path(module):
        return False
    rel = module.split(".")[1:]
    base = ROOT.joinpath(*rel)
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Try):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom):
                    names.update(a.asname or a.name for a in sub.names)
    return attr in names
