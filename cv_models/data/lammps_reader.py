"""LAMMPS files as :class:`Frame` lists: text dumps (:func:`read_lammps_dump`) and data files
(:func:`read_lammps_data`, the molecules' bonds).

Dumps: ``dump custom`` / ``dump atom`` with ``x y z``, ``xu yu zu``, ``xs ys zs`` or
``xsu ysu zsu`` (+ optional ``ix iy iz``), orthorhombic or triclinic boxes; species =
LAMMPS type − 1; molecules from a data file's Bonds, a ``mol`` column, or a fixed count.
Positions keep the dump's unit (``units lj`` → ``"lj"``, ``real``/``metal`` → ``"A"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .frames import UNLABELED, Frame, frames_from_arrays
from .molecules import MoleculeLayout, build_layout, connected_components, layout_from_count
from ..units import lammps_length_unit
from .pbc import lammps_cell


# ----------------------------------------------------------------------------- dumps


@dataclass
class DumpFrame:
    """One raw frame of a LAMMPS dump, sorted by atom id.

    Attributes:
        timestep: MD step.
        cell: [3, 3] rows a, b, c.
        origin: [3] box origin (xlo, ylo, zlo).
        columns: {name: [N] array} of every per-atom column, sorted by ``id``.
    """

    timestep: int
    cell: np.ndarray
    origin: np.ndarray
    columns: dict[str, np.ndarray]

    def positions(self) -> np.ndarray:
        """[N, 3] Cartesian positions, unwrapped with image flags when present."""
        c = self.columns
        if all(k in c for k in ("xu", "yu", "zu")):
            return np.stack([c["xu"], c["yu"], c["zu"]], axis=1)
        if all(k in c for k in ("xsu", "ysu", "zsu")):
            s = np.stack([c["xsu"], c["ysu"], c["zsu"]], axis=1)
            return self.origin + s @ self.cell
        if all(k in c for k in ("x", "y", "z")):
            r = np.stack([c["x"], c["y"], c["z"]], axis=1)
        elif all(k in c for k in ("xs", "ys", "zs")):
            r = self.origin + np.stack([c["xs"], c["ys"], c["zs"]], axis=1) @ self.cell
        else:
            raise ValueError(
                f"Dump has no coordinates (columns {sorted(c)}); write x y z, xu yu zu, xs ys zs or xsu ysu zsu."
            )
        if all(k in c for k in ("ix", "iy", "iz")):
            r = r + np.stack([c["ix"], c["iy"], c["iz"]], axis=1) @ self.cell
        return r


def _parse_box(header: str, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    vals = np.array([[float(v) for v in ln.split()] for ln in lines])
    tokens = header.split()[3:]  # after "ITEM: BOX BOUNDS"
    if tokens[:2] == ["abc", "origin"]:  # general triclinic: ax ay az ox / ...
        return vals[:, :3].copy(), vals[:, 3].copy()
    if vals.shape[1] == 3:  # restricted triclinic: bounds + tilt
        xy, xz, yz = vals[0, 2], vals[1, 2], vals[2, 2]
        xlo = vals[0, 0] - min(0.0, xy, xz, xy + xz)
        xhi = vals[0, 1] - max(0.0, xy, xz, xy + xz)
        ylo = vals[1, 0] - min(0.0, yz)
        yhi = vals[1, 1] - max(0.0, yz)
        zlo, zhi = vals[2, 0], vals[2, 1]
        return lammps_cell(xhi - xlo, yhi - ylo, zhi - zlo, xy, xz, yz), np.array([xlo, ylo, zlo])
    lo, hi = vals[:, 0], vals[:, 1]
    return lammps_cell(*(hi - lo)), lo.copy()


def iter_lammps_dump(path: str | os.PathLike):
    """Yield :class:`DumpFrame` for each frame of a LAMMPS text dump (sorted by id)."""
    with open(path) as fh:
        line = fh.readline()
        while line:
            if not line.startswith("ITEM: TIMESTEP"):
                line = fh.readline()
                continue
            timestep = int(fh.readline().split()[0])
            if not fh.readline().startswith("ITEM: NUMBER OF ATOMS"):
                raise ValueError(f"{path}: malformed dump after timestep {timestep}")
            n = int(fh.readline())
            box_header = fh.readline()
            if not box_header.startswith("ITEM: BOX BOUNDS"):
                raise ValueError(f"{path}: expected 'ITEM: BOX BOUNDS' at timestep {timestep}")
            cell, origin = _parse_box(box_header, [fh.readline() for _ in range(3)])
            atoms_header = fh.readline()
            if not atoms_header.startswith("ITEM: ATOMS"):
                raise ValueError(f"{path}: expected 'ITEM: ATOMS' at timestep {timestep}")
            names = atoms_header.split()[2:]
            rows = [fh.readline() for _ in range(n)]
            data = np.array(" ".join(rows).split(), dtype=np.float64).reshape(n, len(names)) if n else np.zeros((0, len(names)))
            cols = {name: data[:, k] for k, name in enumerate(names)}
            for key in ("id", "type", "mol", "ix", "iy", "iz"):
                if key in cols:
                    cols[key] = cols[key].astype(np.int64)
            if "id" in cols:
                perm = np.argsort(cols["id"], kind="stable")
                cols = {k: v[perm] for k, v in cols.items()}
            yield DumpFrame(timestep, cell, origin, cols)
            line = fh.readline()


# ----------------------------------------------------------------------------- data files


@dataclass
class LammpsData:
    """Contents of a LAMMPS data file that latentcv uses (atoms sorted by id).

    Attributes:
        ids: [N] atom ids. types: [N] atom types (1-based). mol: [N] molecule ids or None.
        positions: [N, 3] as written (wrapped), unwrapped with image flags when present.
        cell: [3, 3]; origin: [3]. bonds: [B, 2] 0-based atom indices (into ``ids``).
        masses: {type: mass}.
    """

    ids: np.ndarray
    types: np.ndarray
    mol: np.ndarray | None
    positions: np.ndarray
    cell: np.ndarray
    origin: np.ndarray
    bonds: np.ndarray
    masses: dict[int, float]


_ATOM_STYLE_COLUMNS = {
    "atomic": ("id", "type", "x", "y", "z"),
    "charge": ("id", "type", "q", "x", "y", "z"),
    "bond": ("id", "mol", "type", "x", "y", "z"),
    "angle": ("id", "mol", "type", "x", "y", "z"),
    "molecular": ("id", "mol", "type", "x", "y", "z"),
    "full": ("id", "mol", "type", "q", "x", "y", "z"),
}


def _data_file_sections(path: str | os.PathLike) -> tuple[dict[str, list[float]], dict[str, list[str]], dict[str, str]]:
    """Split a LAMMPS data file into its header box, its sections and their ``#`` hints.

    Returns:
        header: {"xlo"/"ylo"/"zlo": [lo, hi], "tilt": [xy, xz, yz]} as present.
        sections: {section name: its non-empty lines, comments removed}.
        hints: {section name: the comment after its name, e.g. "atomic" for ``Atoms # atomic``}.
    """
    header: dict[str, list[float]] = {}
    sections: dict[str, list[str]] = {}
    hints: dict[str, str] = {}
    current: str | None = None
    for raw in Path(path).read_text().splitlines()[1:]:
        body, _, comment = raw.partition("#")
        stripped = body.strip()
        if stripped[:1].isalpha() and not any(ch.isdigit() for ch in stripped):  # a section header
            current = stripped
            sections[current] = []
            hints[current] = comment.strip()
            continue
        if not stripped:
            continue
        if current is None:
            tok = stripped.split()
            if tok[-2:] == ["xlo", "xhi"] or tok[-2:] == ["ylo", "yhi"] or tok[-2:] == ["zlo", "zhi"]:
                header[tok[-2]] = [float(tok[0]), float(tok[1])]
            elif tok[-3:] == ["xy", "xz", "yz"]:
                header["tilt"] = [float(t) for t in tok[:3]]
            continue
        sections[current].append(stripped)
    return header, sections, hints


def _atom_columns(path: str | os.PathLike, rows: np.ndarray, atom_style: str | None, hint: str) -> tuple[str, ...]:
    """Column names of the Atoms rows: ``atom_style``, else the section's hint, else by count."""
    style = atom_style
    if style is None and hint:
        style = hint.split()[0]
    if style is None:
        style = {5: "atomic", 8: "atomic", 6: "molecular", 9: "molecular", 7: "full", 10: "full"}.get(rows.shape[1])
    if style not in _ATOM_STYLE_COLUMNS:
        raise ValueError(f"{path}: atom style {style!r} not supported; pass atom_style=one of {sorted(_ATOM_STYLE_COLUMNS)}")
    return _ATOM_STYLE_COLUMNS[style]


def read_lammps_data(path: str | os.PathLike, atom_style: str | None = None) -> LammpsData:
    """Parse a LAMMPS data file (header box incl. tilt, Masses, Atoms, Bonds).

    Args:
        atom_style: override the style hint written after ``Atoms #``; supported:
            atomic, charge, bond, angle, molecular, full. Without either, guessed from
            the column count (5/8 atomic, 6/9 molecular, 7/10 full).
    """
    header, sections, hints = _data_file_sections(path)
    if "Atoms" not in sections:
        raise ValueError(f"{path}: no Atoms section")
    rows = np.array([ln.split() for ln in sections["Atoms"]], dtype=np.float64)
    names = _atom_columns(path, rows, atom_style, hints.get("Atoms", ""))
    cols = {n: rows[:, k] for k, n in enumerate(names)}
    perm = np.argsort(cols["id"], kind="stable")
    cols = {k: v[perm] for k, v in cols.items()}
    nimg = rows.shape[1] - len(names)
    image = rows[perm][:, len(names):len(names) + 3].astype(np.int64) if nimg >= 3 else None
    xlo, xhi = header["xlo"]
    ylo, yhi = header["ylo"]
    zlo, zhi = header["zlo"]
    cell = lammps_cell(xhi - xlo, yhi - ylo, zhi - zlo, *header.get("tilt", [0.0, 0.0, 0.0]))
    pos = np.stack([cols["x"], cols["y"], cols["z"]], axis=1)
    if image is not None:
        pos = pos + image @ cell
    ids = cols["id"].astype(np.int64)
    bonds = np.zeros((0, 2), dtype=np.int64)
    if sections.get("Bonds"):
        b = np.array([ln.split()[2:4] for ln in sections["Bonds"]], dtype=np.int64)
        bonds = np.searchsorted(ids, b)
        if (ids[np.clip(bonds, 0, len(ids) - 1)] != b).any():
            raise ValueError(f"{path}: a bond names an atom id that is not in Atoms")
    masses = {int(ln.split()[0]): float(ln.split()[1]) for ln in sections.get("Masses", [])}
    return LammpsData(
        ids=ids,
        types=cols["type"].astype(np.int64),
        mol=cols["mol"].astype(np.int64) if "mol" in cols else None,
        positions=pos,
        cell=cell,
        origin=np.array([xlo, ylo, zlo]),
        bonds=bonds,
        masses=masses,
    )


def _dump_layout(
    path: str | os.PathLike,
    first: dict[str, np.ndarray],
    species: np.ndarray,
    data_file: str | os.PathLike | None,
    atoms_per_molecule: int | None,
) -> MoleculeLayout:
    """The molecules of a dump, in the order of precedence :func:`read_lammps_dump` documents."""
    if data_file is not None:
        data = read_lammps_data(data_file)
        if "id" in first and not np.array_equal(data.ids, first["id"]):
            raise ValueError(f"{data_file} and {path} do not hold the same atom ids")
        if len(data.bonds):
            return build_layout(connected_components(len(data.ids), data.bonds), species, data.bonds)
        return layout_from_count(species, atoms_per_molecule or 1)
    if atoms_per_molecule:
        return layout_from_count(species, atoms_per_molecule)
    if "mol" in first:
        return build_layout(first["mol"], species)
    return layout_from_count(species, 1)


def read_lammps_dump(
    path: str | os.PathLike,
    *,
    data_file: str | os.PathLike | None = None,
    atoms_per_molecule: int | None = None,
    units: str = "lj",
    label: int | str = UNLABELED,
    trajectory: str | None = None,
    start: int = 0,
    stop: int | None = None,
    stride: int = 1,
) -> list[Frame]:
    """Frames of a LAMMPS text dump.

    Molecules, first match wins: ``data_file`` (connected components of its Bonds; no
    bonds → one atom per molecule, unless ``atoms_per_molecule`` is given), then
    ``atoms_per_molecule`` (consecutive atom ids), then a ``mol`` dump column, else one
    atom per molecule. Species = LAMMPS type − 1 (all 0 without a ``type`` column).

    Args:
        path: dump file (``dump custom ... id type x y z`` or similar).
        data_file: LAMMPS data file of the same system (same atom ids).
        atoms_per_molecule: fixed molecule size, atoms in id order.
        units: LAMMPS ``units`` style of the run → ``Frame.length_unit``.
        label: phase label for every frame: CRYSTAL, MELT, UNLABELED (1, 0, -1) or
            "crystal", "melt", "unlabeled" (any case).
        trajectory: trajectory name (default: the file name).
        start, stop, stride: frame selection (Python slice semantics).
    Returns:
        list of Frames, ``index`` counting the selected frames from 0; repeated
        timesteps (e.g. a dump written again when a run restarts) are dropped.
    """
    raw: list[DumpFrame] = []
    seen: set[int] = set()
    for fr in iter_lammps_dump(path):
        if fr.timestep in seen:
            continue
        seen.add(fr.timestep)
        raw.append(fr)
    raw = raw[start:stop:stride]
    if not raw:
        return []
    first = raw[0].columns
    n = len(next(iter(first.values())))
    species = first["type"] - 1 if "type" in first else np.zeros(n, dtype=np.int64)
    layout = _dump_layout(path, first, species, data_file, atoms_per_molecule)
    return frames_from_arrays(
        [f.positions() for f in raw],
        [f.cell for f in raw],
        [f.timestep for f in raw],
        species,
        layout,
        label=label,
        length_unit=lammps_length_unit(units),
        trajectory=trajectory if trajectory is not None else Path(path).name,
    )
