"""Length units of latentcv: the one table every reader, exporter and checker uses.

- :data:`MODEL_LENGTH_UNITS`: what a model file may declare (docs/model-contract.md):
  ``"lj"`` (reduced: lengths in sigma, no size in nm), ``"nm"``, ``"A"``. The C++ core
  mirrors this table in ``cpp/latentcv/units.cpp``.
- :data:`NM_PER_UNIT`: the size in nm of every physical unit a trajectory may hold
  (the model units, and those of LAMMPS' other ``units`` styles).
- :data:`LAMMPS_LENGTH_UNIT`: the length unit of each LAMMPS ``units`` style.
"""

from __future__ import annotations

from typing import Dict, Tuple

__all__ = ["MODEL_LENGTH_UNITS", "PHYSICAL_MODEL_LENGTH_UNITS", "NM_PER_UNIT", "LAMMPS_LENGTH_UNIT",
           "length_conversion", "check_model_length_unit", "lammps_length_unit"]

REDUCED = "lj"
PHYSICAL_MODEL_LENGTH_UNITS: Tuple[str, ...] = ("nm", "A")
MODEL_LENGTH_UNITS: Tuple[str, ...] = (REDUCED,) + PHYSICAL_MODEL_LENGTH_UNITS
NM_PER_UNIT: Dict[str, float] = {"nm": 1.0, "A": 0.1, "bohr": 0.052917721090, "m": 1e9, "cm": 1e7, "um": 1e3}
LAMMPS_LENGTH_UNIT: Dict[str, str] = {"lj": REDUCED, "real": "A", "metal": "A", "nano": "nm", "electron": "bohr",
                                      "si": "m", "cgs": "cm", "micro": "um"}


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
        raise ValueError(f"the trajectory is in {src!r} lengths but the model in {dst!r}: reduced (lj) and physical "
                         "units do not convert; use frames of the model's unit system (for a LAMMPS dump: --units "
                         "lj|real|metal|nano; for mdtraj formats holding reduced numbers: --length-unit lj)")
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
