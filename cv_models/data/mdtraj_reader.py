"""Any trajectory mdtraj reads (DCD, XTC, TRR, PDB, lammpstrj with a topology, ...) as
:class:`Frame` lists: mdtraj converts to nm, molecules come from the topology's residues
or bonds (or a count), species from elements.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from .frames import UNLABELED, Frame, frames_from_arrays
from .molecules import MoleculeLayout, build_layout, connected_components, layout_from_count
from ..units import check_model_length_unit, length_conversion

# Unit mdtraj assumes a format stores lengths in (it converts to nm on reading).
_MDTRAJ_FILE_UNIT = {
    ".xtc": "nm",
    ".trr": "nm",
    ".gro": "nm",
    ".h5": "nm",
    ".tng": "nm",
    ".dcd": "A",
    ".pdb": "A",
    ".pdb.gz": "A",
    ".lammpstrj": "A",
    ".xyz": "A",
    ".xyz.gz": "A",
    ".nc": "A",
    ".ncdf": "A",
    ".netcdf": "A",
    ".binpos": "A",
    ".arc": "A",
    ".mdcrd": "A",
    ".crd": "A",
}


def _suffix(path: str | os.PathLike) -> str:
    name = str(path).lower()
    for ext in sorted(_MDTRAJ_FILE_UNIT, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return Path(name).suffix


def read_mdtraj(
    path: str | os.PathLike,
    top: str | os.PathLike | None = None,
    *,
    molecules: Literal["residues", "bonds"] | int = "residues",
    length_unit: str = "nm",
    species_map: dict[str, int] | None = None,
    label: int | str = UNLABELED,
    trajectory: str | None = None,
    stride: int = 1,
) -> list[Frame]:
    """Frames of any trajectory mdtraj reads (DCD, XTC, TRR, PDB, lammpstrj, ...).

    Args:
        path: trajectory file; ``top``: topology (PDB, ...) when the format has none.
        molecules: "residues" (one molecule per residue), "bonds" (connected
            components of the topology's bonds) or an int (fixed atoms per molecule).
        length_unit: unit of the returned frames: "nm" (mdtraj's), "A", or "lj" for
            files that hold reduced LJ numbers (the conversion mdtraj applied for that
            format is undone, e.g. ×10 for DCD/PDB/lammpstrj, ×1 for XTC/TRR).
        species_map: element symbol (or atom name for virtual/unknown elements) →
            species index; default: sorted unique symbols → 0, 1, ...
        label, trajectory, stride: as in :func:`read_lammps_dump`.
    Raises:
        ValueError: the trajectory has no periodic box.
    """
    import mdtraj

    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride = {stride!r}: must be an integer >= 1")
    for f in (path, top):
        if f is not None and not Path(f).is_file():
            raise FileNotFoundError(f"{f} does not exist or is not a file")
    try:
        traj = mdtraj.load(str(path), top=None if top is None else str(top), stride=stride)
    except Exception as exc:  # mdtraj's parsers raise anything (IndexError, struct.error, ...) on a bad file
        raise ValueError(
            f"{path}: mdtraj cannot read it{' with topology ' + str(top) if top else ''} "
            f"({type(exc).__name__}: {exc}); check the format and the topology"
        ) from exc
    if traj.unitcell_vectors is None:
        raise ValueError(f"{path} has no periodic box; latentcv needs periodic frames.")
    scale = _scale_from_nm(path, length_unit)
    atoms = list(traj.topology.atoms)
    species = _species(atoms, species_map)
    bonds = np.array([[b[0].index, b[1].index] for b in traj.topology.bonds], dtype=np.int64).reshape(-1, 2)
    layout = _layout(atoms, species, bonds, molecules)
    steps = [-1] * traj.n_frames
    return frames_from_arrays(
        list(traj.xyz.astype(np.float64)),
        list(traj.unitcell_vectors.astype(np.float64)),
        steps,
        species,
        layout,
        label=label,
        length_unit=length_unit,
        trajectory=trajectory if trajectory is not None else Path(path).name,
        scale=scale,
        source=str(path),
        file_frames=[k * stride for k in range(traj.n_frames)],
    )


def _scale_from_nm(path: str | os.PathLike, length_unit: str) -> float:
    """Factor taking mdtraj's nm to ``length_unit`` ("lj": back to the numbers in the file)."""
    if length_unit == "lj":
        return length_conversion("nm", _MDTRAJ_FILE_UNIT.get(_suffix(path), "nm"))
    return length_conversion("nm", check_model_length_unit(length_unit))


def _species(atoms: list, species_map: dict[str, int] | None) -> np.ndarray:
    """[N] species of mdtraj atoms: element symbol (atom name for virtual/unknown) via ``species_map``."""
    symbols = []
    for a in atoms:
        el = a.element
        symbols.append(el.symbol if el is not None and el.symbol not in ("VS", "") else a.name)
    if species_map is None:
        species_map = {s: k for k, s in enumerate(sorted(set(symbols)))}
    try:
        return np.array([species_map[s] for s in symbols], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"species_map has no entry for {e.args[0]!r}") from None


def _layout(atoms: list, species: np.ndarray, bonds: np.ndarray, molecules: str | int) -> MoleculeLayout:
    """Molecules of mdtraj atoms: residues, bonded components, or a fixed count."""
    if isinstance(molecules, (int, np.integer)) and not isinstance(molecules, bool):
        return layout_from_count(species, int(molecules))
    if molecules == "residues":
        groups = np.array([a.residue.index for a in atoms], dtype=np.int64)
        inside = bonds[groups[bonds[:, 0]] == groups[bonds[:, 1]]] if len(bonds) else bonds
        return build_layout(groups, species, inside if len(inside) else None)
    if molecules == "bonds":
        return build_layout(connected_components(len(atoms), bonds), species, bonds if len(bonds) else None)
    raise ValueError(f"molecules must be 'residues', 'bonds' or an int, not {molecules!r}")
