"""Write Frames as LAMMPS text dumps and data files (for round trips, tests and demos)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .frames import Frame


def _check_lammps_cell(cell: np.ndarray) -> None:
    if abs(cell[0, 1]) > 1e-12 or abs(cell[0, 2]) > 1e-12 or abs(cell[1, 2]) > 1e-12:
        raise ValueError(
            "LAMMPS boxes need a lower-triangular cell (a along x, b in the xy plane); rotate the frame first."
        )


def _box_lines(cell: np.ndarray, origin: np.ndarray) -> tuple[str, list[str]]:
    lx, ly, lz = cell[0, 0], cell[1, 1], cell[2, 2]
    xy, xz, yz = cell[1, 0], cell[2, 0], cell[2, 1]
    xlo, ylo, zlo = origin
    if xy == 0 and xz == 0 and yz == 0:
        return "ITEM: BOX BOUNDS pp pp pp", [
            f"{xlo:.16g} {xlo + lx:.16g}",
            f"{ylo:.16g} {ylo + ly:.16g}",
            f"{zlo:.16g} {zlo + lz:.16g}",
        ]
    xlob = xlo + min(0.0, xy, xz, xy + xz)
    xhib = xlo + lx + max(0.0, xy, xz, xy + xz)
    ylob = ylo + min(0.0, yz)
    yhib = ylo + ly + max(0.0, yz)
    return "ITEM: BOX BOUNDS xy xz yz pp pp pp", [
        f"{xlob:.16g} {xhib:.16g} {xy:.16g}",
        f"{ylob:.16g} {yhib:.16g} {xz:.16g}",
        f"{zlo:.16g} {zlo + lz:.16g} {yz:.16g}",
    ]


def write_lammps_dump(
    path: str | os.PathLike,
    frames: Sequence[Frame],
    *,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    ids: np.ndarray | None = None,
    wrap: bool = True,
) -> None:
    """Write frames as ``dump custom`` text: ``id mol type x y z`` (type = species + 1).

    Args:
        frames: frames with lower-triangular (LAMMPS) cells.
        origin: box origin (xlo, ylo, zlo).
        ids: [N] atom id of each frame atom (default 1..N); rows are written sorted by id.
        wrap: wrap positions into the box (as LAMMPS writes ``x y z``).
    """
    origin = np.asarray(origin, dtype=np.float64)
    with open(path, "w") as fh:
        for k, f in enumerate(frames):
            cell = np.asarray(f.cell, dtype=np.float64)
            _check_lammps_cell(cell)
            n = f.n_atoms
            aid = np.arange(1, n + 1) if ids is None else np.asarray(ids)
            r = np.asarray(f.positions, dtype=np.float64)
            if wrap:
                s = (r - origin) @ np.linalg.inv(cell)
                r = origin + (s - np.floor(s)) @ cell
            head, box = _box_lines(cell, origin)
            fh.write(f"ITEM: TIMESTEP\n{f.timestep if f.timestep >= 0 else k}\nITEM: NUMBER OF ATOMS\n{n}\n")
            fh.write(head + "\n" + "\n".join(box) + "\nITEM: ATOMS id mol type x y z\n")
            for a in np.argsort(aid, kind="stable"):
                fh.write(
                    f"{aid[a]} {f.molecule[a] + 1} {f.species[a] + 1} {r[a, 0]:.16g} {r[a, 1]:.16g} {r[a, 2]:.16g}\n"
                )


def write_lammps_data(
    path: str | os.PathLike,
    frame: Frame,
    *,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    ids: np.ndarray | None = None,
    masses: Sequence[float] | None = None,
) -> None:
    """Write one frame as a LAMMPS data file (``atom_style bond``; Bonds from ``frame.bonds``).

    Args:
        ids: [N] atom id of each frame atom (default 1..N).
        masses: per species (default 1.0).
    """
    cell = np.asarray(frame.cell, dtype=np.float64)
    _check_lammps_cell(cell)
    n = frame.n_atoms
    aid = np.arange(1, n + 1) if ids is None else np.asarray(ids)
    nspec = int(frame.species.max()) + 1 if n else 1
    masses = [1.0] * nspec if masses is None else list(masses)
    apm = frame.atoms_per_molecule
    bonds = np.zeros((0, 2), dtype=np.int64)
    if frame.bonds is not None and len(frame.bonds):
        starts = np.arange(frame.n_molecules) * apm
        bonds = (starts[:, None, None] + np.asarray(frame.bonds)[None]).reshape(-1, 2)
    xlo, ylo, zlo = np.asarray(origin, dtype=np.float64)
    lines = [
        "LAMMPS data file written by latentcv",
        "",
        f"{n} atoms",
        f"{nspec} atom types",
        f"{len(bonds)} bonds",
        f"{1 if len(bonds) else 0} bond types",
        "",
        f"{xlo:.16g} {xlo + cell[0, 0]:.16g} xlo xhi",
        f"{ylo:.16g} {ylo + cell[1, 1]:.16g} ylo yhi",
        f"{zlo:.16g} {zlo + cell[2, 2]:.16g} zlo zhi",
    ]
    if cell[1, 0] or cell[2, 0] or cell[2, 1]:
        lines.append(f"{cell[1, 0]:.16g} {cell[2, 0]:.16g} {cell[2, 1]:.16g} xy xz yz")
    lines += ["", "Masses", ""] + [f"{t + 1} {m:.16g}" for t, m in enumerate(masses)]
    lines += ["", "Atoms # bond", ""]
    r = frame.positions
    for a in range(n):
        lines.append(
            f"{aid[a]} {frame.molecule[a] + 1} {frame.species[a] + 1} {r[a, 0]:.16g} {r[a, 1]:.16g} {r[a, 2]:.16g}"
        )
    if len(bonds):
        lines += ["", "Bonds", ""] + [f"{k + 1} 1 {aid[p]} {aid[q]}" for k, (p, q) in enumerate(bonds)]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
