"""Tiny synthetic frames for tests and smoke runs (no MD needed).

"Crystal" frames are fcc lattices with Gaussian displacements; "melt" frames are random
points relaxed with a soft repulsion at the same density (liquid-like: no long-range
order, no overlaps). Molecules of 2 atoms are dimers centred on those points, oriented
all along one axis (orientationally ordered crystal) or randomly (plastic / melt).
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np

from .data.frames import CRYSTAL, MELT, Frame
from .data.pbc import minimum_image

__all__ = [
    "FCC_BASIS",
    "BCC_BASIS",
    "lattice_positions",
    "fcc_positions",
    "liquid_positions",
    "molecular_frame",
    "synthetic_dataset",
    "skew_cell",
]


FCC_BASIS = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
BCC_BASIS = np.array([[0, 0, 0], [0.5, 0.5, 0.5]])


def lattice_positions(
    basis, cells: int | Sequence[int], spacing: float | Sequence[float] = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The one lattice builder: points of ``basis`` (fractional coordinates in one unit
    cell, [K, 3]) repeated over ``cells`` unit cells per edge (a number or (nx, ny, nz))
    of edges ``spacing`` (a number: cubic, or three lengths); returns the points
    ([K nx ny nz, 3], cell by cell in i, j, k order) and the orthorhombic box ([3, 3])."""
    n = np.broadcast_to(np.asarray(cells, dtype=np.int64), (3,))
    a = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
    g = np.stack(np.meshgrid(*(np.arange(k) for k in n), indexing="ij"), -1).reshape(-1, 1, 3)
    pts = ((g + np.asarray(basis, dtype=float)[None]) * a).reshape(-1, 3)
    return pts, np.diag(n * a)


def fcc_positions(n_cells: int | Sequence[int], lattice: float) -> tuple[np.ndarray, np.ndarray]:
    """fcc points ([4 n^3, 3]) and the cubic cell ([3, 3]) of ``n_cells``^3 unit cells
    (or (nx, ny, nz) cells) of edge ``lattice``."""
    return lattice_positions(FCC_BASIS, n_cells, lattice)


def liquid_positions(
    n: int, cell: np.ndarray, rng: np.random.Generator, r_min: float = 0.9, steps: int = 200
) -> np.ndarray:
    """n random points in ``cell`` pushed apart by a soft repulsion below ``r_min``."""
    x = rng.random((n, 3)) @ cell
    for _ in range(steps):
        d = minimum_image(x[None, :, :] - x[:, None, :], cell)
        r = np.linalg.norm(d, axis=-1) + np.eye(n) * 1e9
        overlap = np.clip(r_min - r, 0.0, None)
        if overlap.max() < 1e-3:
            break
        f = -(overlap / r)[..., None] * d
        x = x + 0.5 * f.sum(1)
    return x


def skew_cell(cell: np.ndarray, xy: float = 0.3, xz: float = -0.2, yz: float = 0.25) -> np.ndarray:
    """A triclinic cell of the same volume (LAMMPS tilt factors, as fractions of the lengths)."""
    a, b, c = np.diag(cell)
    return np.array([[a, 0, 0], [xy * a, b, 0], [xz * a, yz * b, c]])


def molecular_frame(
    centres: np.ndarray,
    cell: np.ndarray,
    atoms_per_molecule: int,
    rng: np.random.Generator,
    bond: float = 0.3,
    ordered: bool = True,
    label: int = CRYSTAL,
    trajectory: str = "",
    index: int = 0,
) -> Frame:
    """A Frame of molecules centred at ``centres`` (1 atom, or dimers of length ``bond``
    along one common axis if ``ordered``, else randomly oriented)."""
    m = centres.shape[0]
    a = atoms_per_molecule
    if a == 1:
        pos = centres.copy()
    else:
        if ordered:
            axis = np.tile(np.array([1.0, 1.0, 1.0]) / np.sqrt(3.0), (m, 1)) + 0.05 * rng.standard_normal((m, 3))
        else:
            axis = rng.standard_normal((m, 3))
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        off = np.linspace(-0.5, 0.5, a)[None, :, None] * bond * axis[:, None, :]
        pos = (centres[:, None, :] + off).reshape(-1, 3)
    return Frame(
        positions=pos.astype(np.float64),
        cell=np.asarray(cell, dtype=np.float64),
        molecule=np.repeat(np.arange(m), a),
        species=np.zeros(m * a, dtype=np.int64),
        label=label,
        length_unit="lj",
        trajectory=trajectory,
        index=index,
    )


def synthetic_dataset(
    atoms_per_molecule: int = 1,
    n_cells: int = 2,
    density: float = 1.0,
    noise: float = 0.06,
    trajectories_per_phase: int = 2,
    frames_per_trajectory: int = 6,
    triclinic: bool = False,
    plastic: bool = False,
    seed: int = 0,
) -> List[Frame]:
    """Crystal and melt trajectories of tiny synthetic frames with labels and names.

    Consecutive frames of one "trajectory" are correlated (a random walk of the
    displacements), as MD frames are. ``plastic`` gives the crystal random molecular
    orientations (centres still fcc).
    """
    rng = np.random.default_rng(seed)
    lattice = (4.0 / density) ** (1.0 / 3.0)
    frames: List[Frame] = []
    for phase, label in (("crystal", CRYSTAL), ("melt", MELT)):
        for t in range(trajectories_per_phase):
            name = f"{phase}{t}"
            pts, cell = fcc_positions(n_cells, lattice)
            if triclinic:
                new = skew_cell(cell)
                pts = pts @ np.linalg.inv(cell) @ new
                cell = new
            base = pts if label == CRYSTAL else liquid_positions(pts.shape[0], cell, rng)
            walk = np.zeros_like(base)
            for k in range(frames_per_trajectory):
                walk = 0.7 * walk + rng.standard_normal(base.shape) * noise
                centres = base + walk
                if label == MELT:
                    centres = base + 3 * walk
                frames.append(
                    molecular_frame(
                        centres,
                        cell,
                        atoms_per_molecule,
                        rng,
                        ordered=(label == CRYSTAL and not plastic),
                        label=label,
                        trajectory=name,
                        index=k,
                    )
                )
    return frames
