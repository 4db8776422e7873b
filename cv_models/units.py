"""Length units of latentcv: the one table every reader, exporter and checker uses.

- :data:`MODEL_LENGTH_UNITS`: what a model file may declare (docs/model-contract.md):
  ``"lj"`` (reduced: lengths in sigma, no size in nm), ``"nm"``, ``"A"``. The C++ core
  mirrors this table in ``cpp/latentcv/units.cpp``.
- :data:`NM_PER_UNIT`: the size in nm of every physical unit a trajectory may hold
  (the model units, and those of LAMMPS' other ``units`` styles).
- :data:`LAMMPS_UNIT_STYLES`: every LAMMPS ``units`` style in PLUMED's units (nm, kJ/mol, ps,
  amu, e): what ``fix plumed`` hands PLUMED. The C++ mirror is ``kLammpsUnitStyles`` in
  ``cpp/latentcv/lammps_units.h`` (compiled into the LAMMPS plugin); tests/test_units.py checks
  that the two are equal and agree with LAMMPS's own constants.
- :data:`LAMMPS_LENGTH_UNIT`: the length unit of each LAMMPS ``units`` style (from the table).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

__all__ = [
    "MODEL_LENGTH_UNITS",
    "PHYSICAL_MODEL_LENGTH_UNITS",
    "NM_PER_UNIT",
    "LAMMPS_UNIT_STYLES",
    "LammpsUnitStyle",
    "LAMMPS_LENGTH_UNIT",
    "length_conversion",
    "check_model_length_unit",
    "lammps_length_unit",
]

REDUCED = "lj"
PHYSICAL_MODEL_LENGTH_UNITS: Tuple[str, ...] = ("nm", "A")
MODEL_LENGTH_UNITS: Tuple[str, ...] = (REDUCED,) + PHYSICAL_MODEL_LENGTH_UNITS
NM_PER_UNIT: Dict[str, float] = {"nm": 1.0, "A": 0.1, "bohr": 0.052917721090, "m": 1e9, "cm": 1e7, "um": 1e3}


class LammpsUnitStyle(NamedTuple):
    """One MD unit of a LAMMPS ``units`` style in PLUMED's units (all 0 for ``lj``: reduced,
    PLUMED's natural units)."""

    length_unit: str  # latentcv's name of its length unit (a key of NM_PER_UNIT, or "lj")
    nm: float
    kj_per_mol: float
    ps: float
    amu: float
    e: float


# kcal/mol, eV, J, erg, Hartree, pg um^2/us^2, ag nm^2/ns^2; masses g/mol, kg, g, amu, pg, ag
LAMMPS_UNIT_STYLES: Dict[str, LammpsUnitStyle] = {
    "lj": LammpsUnitStyle(REDUCED, 0.0, 0.0, 0.0, 0.0, 0.0),
    "real": LammpsUnitStyle("A", 0.1, 4.184, 0.001, 1.0, 1.0),
    "metal": LammpsUnitStyle("A", 0.1, 96.48533212331002, 1.0, 1.0, 1.0),
    "nano": LammpsUnitStyle("nm", 1.0, 0.602214076, 1e3, 602214.076, 1.0),
    "electron": LammpsUnitStyle("bohr", 0.052917721090, 2625.4996394798254, 0.001, 1.0, 1.0),
    "si": LammpsUnitStyle("m", 1e9, 6.02214076e20, 1e12, 6.02214076e26, 6.241509074460763e18),
    "cgs": LammpsUnitStyle("cm", 1e7, 6.02214076e13, 1e12, 6.02214076e23, 2081943327.0935597),
    "micro": LammpsUnitStyle("um", 1e3, 602214.076, 1e6, 602214076000.0, 6241509.074460763),
}
LAMMPS_LENGTH_UNIT: Dict[str, str] = {style: s.length_unit for style, s in LAMMPS_UNIT_STYLES.items()}


def check_model_length_unit(unit: str) -> str:
    """``unit`` if a model may declare it; ValueError naming the accepted ones otherwise."""
    if unit not in MODEL_LENGTH_UNITS:
        raise ValueError(f"length_unit {unit!r}: a latentcv model is in one of {', '.join(MODEL_LENGTH_UNITS)}")
    return unit


def length_conversion(src: str, dst: str) -> float:
    """Factor f such that a length in ``src`` times f is in ``dst``.

    Raises:
        ValueError: reduced (``lj``) lengths and physical ones do not convert; unknown unit.
    """
    if src == dst:
        return 1.0
    if REDUCED in (src, dst):
        raise ValueError(
            f"the trajectory is in {src!r} lengths but the model in {dst!r}: reduced (lj) and physical "
            "units do not convert; use frames of the model's unit system (for a LAMMPS dump: --units "
            "lj|real|metal|nano; for mdtraj formats holding reduced numbers: --length-unit lj)"
        )
    try:
        return NM_PER_UNIT[src] / NM_PER_UNIT[dst]
    except KeyError as exc:
        raise ValueError(f"unknown length unit {exc.args[0]!r}; known: lj, {', '.join(NM_PER_UNIT)}") from None


def lammps_length_unit(units: str) -> str:
    """latentcv length unit of a LAMMPS ``units`` style (``lj`` → ``"lj"``, ``real``/``metal`` → ``"A"``)."""
    try:
        return LAMMPS_LENGTH_UNIT[units]
    except KeyError:
        raise ValueError(f"Unknown LAMMPS units style {units!r}; one of {sorted(LAMMPS_LENGTH_UNIT)}.") from None
