"""One short biased LAMMPS run in a process of its own, for tests/test_plumed_kernels.py.

    python tests/lammps_kernel_run.py PLUMED_DAT KERNEL STEPS OUT.npz LAMMPS_LOG

KERNEL is the `fix plumed ... kernel` value (a path, `optimised` or `bundled`). Each
kernel gets its own process: two PLUMED kernels with the same soname in one process
would resolve a LOADed plugin's symbols against whichever was loaded first.
Saves positions and forces (ordered by atom ID) and the bias f_p after the run.
"""

from __future__ import annotations

import sys

import numpy as np

from latentcv.cv_models.engines import open_lammps
from latentcv.cv_models.systems import system_commands

SETUP = (
    system_commands("lj", 4, density=0.9)
    + """\
velocity all create 0.58 4711 mom yes rot yes
fix md all nve
"""
)


def main() -> None:
    dat, kernel, steps, out, log = sys.argv[1:6]
    lmp = open_lammps(["-log", log], load_fix_plumed=True)
    try:
        lmp.commands_string(SETUP)
        lmp.command(f"fix p all plumed plumedfile {dat} outfile {dat}.log kernel {kernel}")
        lmp.command("thermo_style custom step pe f_p")
        lmp.command(f"run {int(steps)}")
        n = lmp.get_natoms()
        x = np.array(lmp.gather_atoms("x", 1, 3), dtype=float).reshape(n, 3)
        f = np.array(lmp.gather_atoms("f", 1, 3), dtype=float).reshape(n, 3)
        np.savez(out, x=x, f=f, bias=lmp.extract_fix("p", 0, 0))
    finally:
        lmp.close()


if __name__ == "__main__":
    main()
