"""Read trajectories into :class:`Frame` lists: LAMMPS dumps and data files, and mdtraj.

Two routes:

- :func:`read_lammps_dump`: LAMMPS text dumps (``dump custom`` / ``dump atom``) with
  ``x y z``, ``xu yu zu``, ``xs ys zs`` or ``xsu ysu zsu`` (+ optional ``ix iy iz``),
  orthorhombic or triclinic boxes; species = LAMMPS type − 1; molecules from a data
  file's Bonds (:func:`read_lammps_data`), a ``mol`` column, or a fixed count.
  Positions keep the dump's unit (``units lj`` → ``"lj"``, ``real``/``metal`` → ``"A"``).
- :func:`read_mdtraj`: anything mdtraj loads (DCD, XTC, TRR, PDB, lammpstrj with a
  topology, ...); mdtraj converts to nm, molecules come from the topology's residues
  or bonds (or a count), species from elements.

Every frame returned has contiguous molecules with one atom pattern, molecules made
whole across the periodic boundaries, the caller's phase label and a trajectory name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .dataset import Dataset
from .frames import UNLABELED, Frame, parse_label
from .molecules import MoleculeLayout, build_layout, connected_components, layout_from_count, make_whole
from ..units import PHYSICAL_MODEL_LENGTH_UNITS, length_conversion, lammps_length_unit
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


def read_lammps_data(path: str | os.PathLike, atom_style: str | None = None) -> LammpsData:
    """Parse a LAMMPS data file (header box incl. tilt, Masses, Atoms, Bonds).

    Args:
        atom_style: override the style hint written after ``Atoms #``; supported:
            atomic, charge, bond, angle, molecular, full. Without either, guessed from
            the column count (5/8 atomic, 6/9 molecular, 7/10 full).
    """
    text = Path(path).read_text().splitlines()
    header: dict[str, list[float]] = {}
    sections: dict[str, list[str]] = {}
    hints: dict[str, str] = {}
    current: str | None = None
    for raw in text[1:]:
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
    if "Atoms" not in sections:
        raise ValueError(f"{path}: no Atoms section")
    rows = np.array([ln.split() for ln in sections["Atoms"]], dtype=np.float64)
    style = atom_style
    if style is None and hints.get("Atoms"):
        style = hints["Atoms"].split()[0]
    if style is None:
        style = {5: "atomic", 8: "atomic", 6: "molecular", 9: "molecular", 7: "full", 10: "full"}.get(rows.shape[1])
    if style not in _ATOM_STYLE_COLUMNS:
        raise ValueError(f"{path}: atom style {style!r} not supported; pass atom_style=one of {sorted(_ATOM_STYLE_COLUMNS)}")
    names = _ATOM_STYLE_COLUMNS[style]
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


def _frames_from_arrays(
    positions: list[np.ndarray],
    cells: list[np.ndarray],
    timesteps: list[int],
    species: np.ndarray,
    layout: MoleculeLayout,
    *,
    label: int | str,
    length_unit: str,
    trajectory: str,
    scale: float = 1.0,
) -> list[Frame]:
    out = []
    label = parse_label(label)
    spec = species[layout.order]
    for k, (r, h, t) in enumerate(zip(positions, cells, timesteps)):
        h = np.asarray(h, dtype=np.float64) * scale
        r = np.asarray(r, dtype=np.float64)[layout.order] * scale
        r = make_whole(r, h, layout.atoms_per_molecule, layout.bonds)
        out.append(
            Frame(
                positions=r,
                cell=h,
                molecule=layout.molecule.copy(),
                species=spec.copy(),
                label=label,
                length_unit=length_unit,
                trajectory=trajectory,
                index=k,
                bonds=None if layout.bonds is None else layout.bonds.copy(),
                timestep=int(t),
            )
        )
    return out


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
    if data_file is not None:
        data = read_lammps_data(data_file)
        if "id" in first and not np.array_equal(data.ids, first["id"]):
            raise ValueError(f"{data_file} and {path} do not hold the same atom ids")
        if len(data.bonds):
            layout = build_layout(connected_components(len(data.ids), data.bonds), species, data.bonds)
        elif atoms_per_molecule:
            layout = layout_from_count(species, atoms_per_molecule)
        else:
            layout = layout_from_count(species, 1)
    elif atoms_per_molecule:
        layout = layout_from_count(species, atoms_per_molecule)
    elif "mol" in first:
        layout = build_layout(first["mol"], species)
    else:
        layout = layout_from_count(species, 1)
    return _frames_from_arrays(
        [f.positions() for f in raw],
        [f.cell for f in raw],
        [f.timestep for f in raw],
        species,
        layout,
        label=label,
        length_unit=lammps_length_unit(units),
        trajectory=trajectory if trajectory is not None else Path(path).name,
    )


# ----------------------------------------------------------------------------- mdtraj

# Unit mdtraj assumes a format stores lengths in (it converts to nm on reading).
_MDTRAJ_FILE_UNIT = {
    ".xtc": "nm", ".trr": "nm", ".gro": "nm", ".h5": "nm", ".tng": "nm",
    ".dcd": "A", ".pdb": "A", ".pdb.gz": "A", ".lammpstrj": "A", ".xyz": "A", ".xyz.gz": "A",
    ".nc": "A", ".ncdf": "A", ".netcdf": "A", ".binpos": "A", ".arc": "A", ".mdcrd": "A", ".crd": "A",
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

    traj = mdtraj.load(str(path), top=None if top is None else str(top), stride=stride)
    if traj.unitcell_vectors is None:
        raise ValueError(f"{path} has no periodic box; latentcv needs periodic frames.")
    if length_unit == "lj":
        file_unit = _MDTRAJ_FILE_UNIT.get(_suffix(path), "nm")
        scale = length_conversion("nm", file_unit)
    elif length_unit in PHYSICAL_MODEL_LENGTH_UNITS:
        scale = length_conversion("nm", length_unit)
    else:
        raise ValueError(f"length_unit must be 'nm', 'A' or 'lj', not {length_unit!r}")
    atoms = list(traj.topology.atoms)
    symbols = []
    for a in atoms:
        el = a.element
        sym = el.symbol if el is not None and el.symbol not in ("VS", "") else a.name
        symbols.append(sym)
    if species_map is None:
        species_map = {s: k for k, s in enumerate(sorted(set(symbols)))}
    try:
        species = np.array([species_map[s] for s in symbols], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"species_map has no entry for {e.args[0]!r}") from None
    bonds = np.array([[b[0].index, b[1].index] for b in traj.topology.bonds], dtype=np.int64).reshape(-1, 2)
    if isinstance(molecules, (int, np.integer)) and not isinstance(molecules, bool):
        layout = layout_from_count(species, int(molecules))
    elif molecules == "residues":
        groups = np.array([a.residue.index for a in atoms], dtype=np.int64)
        inside = bonds[groups[bonds[:, 0]] == groups[bonds[:, 1]]] if len(bonds) else bonds
        layout = build_layout(groups, species, inside if len(inside) else None)
    elif molecules == "bonds":
        layout = build_layout(connected_components(len(atoms), bonds), species, bonds if len(bonds) else None)
    else:
        raise ValueError(f"molecules must be 'residues', 'bonds' or an int, not {molecules!r}")
    steps = [-1] * traj.n_frames
    return _frames_from_arrays(
        list(traj.xyz.astype(np.float64)),
        list(traj.unitcell_vectors.astype(np.float64)),
        steps,
        species,
        layout,
        label=label,
        length_unit=length_unit,
        trajectory=trajectory if trajectory is not None else Path(path).name,
        scale=scale,
    )


_DUMP_SUFFIXES = (".dump", ".lammpsdump", ".lammpstrj")


def is_lammps_dump(path: str | os.PathLike, top: str | os.PathLike | None = None) -> bool:
    """Whether :func:`read_frames` reads ``path`` as a LAMMPS text dump (``*.dump``,
    ``*.lammpsdump``, ``*.lammpstrj``, ``dump.*``, and no ``top``) rather than with mdtraj."""
    name = Path(path).name.lower()
    return top is None and (name.endswith(_DUMP_SUFFIXES) or name.startswith("dump"))


def read_frames(path: str | os.PathLike, *, top: str | os.PathLike | None = None, **kwargs) -> list[Frame]:
    """Dispatch: LAMMPS dumps (see :func:`is_lammps_dump`) go to :func:`read_lammps_dump`,
    everything else to :func:`read_mdtraj`."""
    if is_lammps_dump(path, top):
        return read_lammps_dump(path, **kwargs)
    return read_mdtraj(path, top, **kwargs)


def read_trajectory(
    path: str | os.PathLike,
    *,
    top: str | os.PathLike | None = None,
    atoms_per_molecule: int | None = None,
    data_file: str | os.PathLike | None = None,
    units: str = "lj",
    length_unit: str = "nm",
    stride: int = 1,
) -> list[Frame]:
    """:func:`read_frames` with the trajectory options of the command line (``latentcv
    eval``, ``latentcv suggest-cutoff``): ``--top``, ``--atoms-per-molecule``,
    ``--data-file``, ``--units`` (dumps), ``--length-unit`` (mdtraj), ``--stride``.

    Molecules of an mdtraj-read file: ``atoms_per_molecule`` atoms each, else its residues.
    Raises FileNotFoundError / ValueError naming the options to fix.
    """
    t = Path(path)
    if not t.exists():
        raise FileNotFoundError(f"trajectory {t} does not exist")
    kwargs: dict[str, object]
    if is_lammps_dump(t, top):
        kwargs = {"units": units, "stride": stride, "data_file": data_file, "atoms_per_molecule": atoms_per_molecule}
    else:
        kwargs = {"stride": stride, "length_unit": length_unit, "molecules": atoms_per_molecule or "residues"}
    try:
        return read_frames(t, top=top, **kwargs)
    except ValueError as exc:
        what = f" as molecules of {atoms_per_molecule} atoms" if atoms_per_molecule else ""
        raise ValueError(f"cannot read {t}{what}: {exc}. Check --atoms-per-molecule / --data-file / --top") from exc


def read_dataset(specs: list[dict]) -> Dataset:
    """Read several trajectories into one :class:`Dataset`.

    Args:
        specs: one dict per trajectory with ``path`` and the keyword arguments of
            :func:`read_frames` (``label`` = "crystal" / "melt" / "unlabeled" or 1 / 0 / -1,
            ``trajectory``, ``data_file``, ``top``, ...).
    """
    ds = Dataset()
    for spec in specs:
        spec = dict(spec)
        path = spec.pop("path")
        if "label" in spec:
            try:
                spec["label"] = parse_label(spec["label"])
            except ValueError as exc:
                raise ValueError(f"trajectory {path}: {exc}") from None
        ds.extend(read_frames(path, **spec))
    names = [f.trajectory for f in ds.frames]
    if len(set(zip(names, (f.index for f in ds.frames)))) != len(names):
        raise ValueError("Two trajectories share a name; give each a distinct `trajectory`.")
    return ds
