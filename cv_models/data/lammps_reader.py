"""LAMMPS files as :class:`Frame` lists: text dumps (:func:`read_lammps_dump`) and data files
(:func:`read_lammps_data`, the molecules' bonds).

Dumps: ``dump custom`` / ``dump atom`` with ``x y z``, ``xu yu zu``, ``xs ys zs`` or
``xsu ysu zsu`` (+ optional ``ix iy iz``), orthorhombic or triclinic boxes; species =
LAMMPS type − 1; molecules from a data file's Bonds, a ``mol`` column, or a fixed count.
Positions keep the dump's unit (``units lj`` → ``"lj"``, ``real``/``metal`` → ``"A"``).

The module is longer than most (~500 lines) because the dump and data-file parsers name
the file, line, frame and column of every malformed input they refuse (truncated files,
non-numeric tokens, frames whose atoms change); the frame-level checks (finite, same
atom count) are :func:`~latentcv.cv_models.data.frames.check_frame_arrays`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .frames import UNLABELED, Frame, frame_place, frames_from_arrays
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
        frame: the frame's place in the file (from 0).
    """

    timestep: int
    cell: np.ndarray
    origin: np.ndarray
    columns: dict[str, np.ndarray]
    frame: int = 0

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


def _parse_box(header: str, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell and origin of a dump's BOX BOUNDS: ``header`` and its three rows ``vals``."""
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


class _DumpLines:
    """A text dump read line by line; :meth:`error` names the file, the line and the frame."""

    def __init__(self, fh, path: str | os.PathLike) -> None:
        self.fh, self.path, self.lineno, self.where = fh, path, 0, ""

    def error(self, problem: str) -> ValueError:
        return ValueError(f"{self.path}, line {self.lineno}{', ' + self.where if self.where else ''}: {problem}")

    def readline(self) -> str:
        try:
            line = self.fh.readline()
        except UnicodeDecodeError:
            self.lineno += 1
            raise self.error("not text (binary bytes): not a LAMMPS text dump") from None
        self.lineno += 1  # at the end of the file: the number of the missing line
        return line

    def line(self, what: str) -> str:
        """The next line, which must exist: a truncated file is an error naming ``what``."""
        line = self.readline()
        if not line:
            raise self.error(f"the file ends where {what} should be (a truncated dump? a run killed while writing?)")
        if not line.endswith("\n"):  # LAMMPS ends every line: a cut number would otherwise read as another
            raise self.error(f"the file ends inside {what} {line[:60]!r}, without its newline (a truncated dump?)")
        return line

    def item(self, name: str) -> str:
        """The next line, which must be ``ITEM: <name>...``."""
        line = self.line(f"'ITEM: {name}'")
        if not line.startswith(f"ITEM: {name}"):
            raise self.error(f"expected 'ITEM: {name}', found {line.strip()[:60]!r}")
        return line

    def numbers(self, line: str, what: str, counts: tuple[int, ...]) -> np.ndarray:
        """The numbers of one line (``counts``: allowed token counts)."""
        tokens = line.split()
        if len(tokens) not in counts:
            raise self.error(
                f"{what} has {len(tokens)} value(s) ({line.strip()[:60]!r}); expected {' or '.join(map(str, counts))}"
            )
        try:
            return np.array([float(t) for t in tokens])
        except ValueError:
            raise self.error(f"{what} is not numeric: {line.strip()[:60]!r}") from None

    def integer(self, what: str) -> int:
        """The next line as one integer."""
        line = self.line(what)
        tokens = line.split()
        if len(tokens) == 1 and re.fullmatch(r"[+-]?[0-9]+", tokens[0]):
            return int(tokens[0])
        raise self.error(f"{what} is not an integer: {line.strip()[:60]!r}")

    def next_frame(self) -> bool:
        """Move past the next ``ITEM: TIMESTEP``; False at the end of the file. Blank lines
        and ``ITEM: UNITS`` / ``ITEM: TIME`` (with their value) may come before it, nothing else."""
        value_line = False
        while line := self.readline():
            text = line.strip()
            if text.startswith("ITEM: TIMESTEP"):
                return True
            if value_line or not text:
                value_line = False
                continue
            if text.startswith(("ITEM: UNITS", "ITEM: TIME")):
                value_line = True
                continue
            raise self.error(
                f"unexpected line {text[:60]!r} where 'ITEM: TIMESTEP' should start a frame "
                "(more atom rows than NUMBER OF ATOMS says, or not a LAMMPS text dump)"
            )
        return False


_INTEGER_COLUMNS = ("id", "type", "mol", "ix", "iy", "iz")


def _atom_table(src: _DumpLines, n: int, names: list[str]) -> dict[str, np.ndarray]:
    """The ``n`` atom rows after ``ITEM: ATOMS names``: {column: [N] array}, sorted by ``id``."""
    first = src.lineno + 1
    rows = [src.line(f"atom row {i + 1} of {n}").split() for i in range(n)]
    for i, row in enumerate(rows):
        if len(row) != len(names):
            src.lineno = first + i
            raise src.error(f"atom row {i + 1} has {len(row)} values for the {len(names)} columns {' '.join(names)}")
    try:
        data = np.array(rows, dtype=np.float64).reshape(n, len(names))
    except ValueError:
        for i, row in enumerate(rows):
            for name, tok in zip(names, row):
                try:
                    float(tok)
                except ValueError:
                    src.lineno = first + i
                    raise src.error(f"atom row {i + 1}: {name} = {tok!r} is not a number") from None
        raise
    cols = {name: data[:, k] for k, name in enumerate(names)}
    for key in _INTEGER_COLUMNS:
        if key in cols:
            v = cols[key]
            bad = np.flatnonzero(~np.isfinite(v) | (v != np.round(v)) | (np.abs(v) > 2**62))
            if len(bad):
                src.lineno = first + int(bad[0])
                raise src.error(f"atom row {bad[0] + 1}: {key} = {float(v[bad[0]])!r} is not an integer")
            cols[key] = v.astype(np.int64)
    if "id" in cols:
        perm = np.argsort(cols["id"], kind="stable")
        cols = {k: v[perm] for k, v in cols.items()}
        repeated = cols["id"][1:][np.diff(cols["id"]) == 0]
        if len(repeated):
            raise src.error(f"atom id {int(repeated[0])} appears twice in this frame")
    return cols


def _read_dump_frame(src: _DumpLines, k: int) -> "DumpFrame":
    """Frame ``k`` of a dump, read after its ``ITEM: TIMESTEP`` line."""
    src.where = f"frame {k}"
    timestep = src.integer("the timestep")
    src.where = frame_place("", k, timestep)
    src.item("NUMBER OF ATOMS")
    n = src.integer("the number of atoms")
    if n < 1:
        raise src.error(f"NUMBER OF ATOMS is {n}; a frame needs at least one atom")
    box_header = src.item("BOX BOUNDS")
    general = box_header.split()[3:5] == ["abc", "origin"]
    vals = [
        src.numbers(src.line("a BOX BOUNDS row"), "a BOX BOUNDS row", (4,) if general else (2, 3)) for _ in range(3)
    ]
    if len({len(v) for v in vals}) != 1:
        raise src.error("the three BOX BOUNDS rows have different numbers of values")
    cell, origin = _parse_box(box_header, np.array(vals))
    names = src.item("ATOMS").split()[2:]
    if not names or len(set(names)) != len(names):
        raise src.error(f"'ITEM: ATOMS' must name distinct columns, found {names}")
    return DumpFrame(timestep, cell, origin, _atom_table(src, n, names), k)


def iter_lammps_dump(path: str | os.PathLike):
    """Yield :class:`DumpFrame` for each frame of a LAMMPS text dump (sorted by id).

    A truncated or malformed frame is a ValueError naming the file, the line and the frame."""
    with open(path) as fh:
        src = _DumpLines(fh, path)
        k = 0
        while src.next_frame():
            yield _read_dump_frame(src, k)
            src.where = ""
            k += 1


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
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not text (binary bytes): not a LAMMPS data file") from None
    for raw in text.splitlines()[1:]:
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
                header[tok[-2]] = list(_float_rows(path, [" ".join(tok[:-2])], f"header '{stripped}'", 2)[0])
            elif tok[-3:] == ["xy", "xz", "yz"]:
                header["tilt"] = list(_float_rows(path, [" ".join(tok[:-3])], f"header '{stripped}'", 3)[0])
            continue
        sections[current].append(stripped)
    return header, sections, hints


def _float_rows(path: str | os.PathLike, lines: list[str], section: str, width: int | None = None) -> np.ndarray:
    """[rows, columns] numbers of a data-file section; ValueError naming the file, section
    and row when the rows are ragged or not numeric (``width``: the exact token count)."""
    rows = [ln.split() for ln in lines]
    want = width if width is not None else (len(rows[0]) if rows else 0)
    for i, row in enumerate(rows):
        if len(row) != want:
            raise ValueError(
                f"{path}: {section} row {i + 1} ({lines[i][:60]!r}) has {len(row)} values, expected {want}"
            )
        for tok in row:
            try:
                float(tok)
            except ValueError:
                raise ValueError(f"{path}: {section} row {i + 1}: {tok!r} is not a number") from None
    return np.array(rows, dtype=np.float64).reshape(len(rows), want)


def _atom_columns(path: str | os.PathLike, rows: np.ndarray, atom_style: str | None, hint: str) -> tuple[str, ...]:
    """Column names of the Atoms rows: ``atom_style``, else the section's hint, else by count."""
    style = atom_style
    if style is None and hint:
        style = hint.split()[0]
    if style is None:
        style = {5: "atomic", 8: "atomic", 6: "molecular", 9: "molecular", 7: "full", 10: "full"}.get(rows.shape[1])
    if style not in _ATOM_STYLE_COLUMNS:
        raise ValueError(
            f"{path}: atom style {style!r} not supported; pass atom_style=one of {sorted(_ATOM_STYLE_COLUMNS)}"
        )
    return _ATOM_STYLE_COLUMNS[style]


def read_lammps_data(path: str | os.PathLike, atom_style: str | None = None) -> LammpsData:
    """Parse a LAMMPS data file (header box incl. tilt, Masses, Atoms, Bonds).

    Args:
        atom_style: override the style hint written after ``Atoms #``; supported:
            atomic, charge, bond, angle, molecular, full. Without either, guessed from
            the column count (5/8 atomic, 6/9 molecular, 7/10 full).
    """
    header, sections, hints = _data_file_sections(path)
    if not sections.get("Atoms"):
        raise ValueError(f"{path}: no Atoms section (not a LAMMPS data file?)")
    for key in ("xlo", "ylo", "zlo"):
        if key not in header:
            raise ValueError(f"{path}: the header has no '{key} {key[0]}hi' line")
    rows = _float_rows(path, sections["Atoms"], "Atoms")
    names = _atom_columns(path, rows, atom_style, hints.get("Atoms", ""))
    if rows.shape[1] < len(names):
        raise ValueError(f"{path}: Atoms rows have {rows.shape[1]} values, atom style columns {' '.join(names)}")
    for key in ("id", "type", "mol"):
        if key in names and (rows[:, names.index(key)] != np.round(rows[:, names.index(key)])).any():
            raise ValueError(f"{path}: Atoms column {key} holds a value that is not an integer")
    cols = {n: rows[:, k] for k, n in enumerate(names)}
    perm = np.argsort(cols["id"], kind="stable")
    cols = {k: v[perm] for k, v in cols.items()}
    nimg = rows.shape[1] - len(names)
    image = rows[perm][:, len(names) : len(names) + 3].astype(np.int64) if nimg >= 3 else None
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
        b = _float_rows(path, sections["Bonds"], "Bonds", 4)[:, 2:4].astype(np.int64)
        bonds = np.searchsorted(ids, b)
        if (ids[np.clip(bonds, 0, len(ids) - 1)] != b).any():
            raise ValueError(f"{path}: a bond names an atom id that is not in Atoms")
    masses = {int(t): m for t, m in _float_rows(path, sections.get("Masses", []), "Masses", 2)}
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


def _distinct_timesteps(path: str | os.PathLike) -> list[DumpFrame]:
    """The dump's frames, a timestep written again (a restarted run's dump) kept once."""
    raw: list[DumpFrame] = []
    seen: set[int] = set()
    for fr in iter_lammps_dump(path):
        if fr.timestep not in seen:
            seen.add(fr.timestep)
            raw.append(fr)
    return raw


def _dump_species(path: str | os.PathLike, frame: DumpFrame) -> np.ndarray:
    """Species [n] = LAMMPS type - 1 (all 0 without a ``type`` column)."""
    columns = frame.columns
    n = len(next(iter(columns.values())))
    species = columns["type"] - 1 if "type" in columns else np.zeros(n, dtype=np.int64)
    if (species < 0).any():
        raise ValueError(
            f"{frame_place(str(path), frame.frame, frame.timestep)}: atom type "
            f"{int(species.min()) + 1} (LAMMPS types start at 1)"
        )
    return species


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
    if stride < 1:
        raise ValueError(f"stride = {stride}: must be >= 1")
    raw = _distinct_timesteps(path)[start:stop:stride]
    if not raw:
        return []
    _check_same_atoms(path, raw)
    first = raw[0].columns
    species = _dump_species(path, raw[0])
    layout = _dump_layout(path, first, species, data_file, atoms_per_molecule)
    positions = []
    for f in raw:
        try:
            positions.append(f.positions())
        except ValueError as exc:
            raise ValueError(f"{frame_place(str(path), f.frame, f.timestep)}: {exc}") from None
    return frames_from_arrays(
        positions,
        [f.cell for f in raw],
        [f.timestep for f in raw],
        species,
        layout,
        label=label,
        length_unit=lammps_length_unit(units),
        trajectory=trajectory if trajectory is not None else Path(path).name,
        source=str(path),
        file_frames=[f.frame for f in raw],
        atom_ids=first.get("id"),
    )


def _check_same_atoms(path: str | os.PathLike, raw: list[DumpFrame]) -> None:
    """ValueError naming the first frame whose atoms (count, ids, types) differ from the first frame's."""
    ref = raw[0].columns
    n = len(next(iter(ref.values())))
    for f in raw[1:]:
        cols = f.columns
        m = len(next(iter(cols.values())))
        what = None
        if m != n:
            what = f"holds {m} atoms, frame {raw[0].frame} (timestep {raw[0].timestep}) {n}"
        elif ("id" in ref) != ("id" in cols) or ("id" in ref and not np.array_equal(ref["id"], cols["id"])):
            what = f"holds other atom ids than frame {raw[0].frame} (timestep {raw[0].timestep})"
        elif ("type" in ref) != ("type" in cols) or ("type" in ref and not np.array_equal(ref["type"], cols["type"])):
            what = f"gives atoms other types than frame {raw[0].frame} (timestep {raw[0].timestep})"
        if what:
            raise ValueError(
                f"{frame_place(str(path), f.frame, f.timestep)} {what}: every frame of one trajectory "
                "must hold the same atoms (atoms deleted or created during the run?); split the dump "
                "where they change, one trajectory per part"
            )
