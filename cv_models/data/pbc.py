"""Periodic-boundary helpers shared by the readers and the analysis (NumPy, triclinic).

Convention (as in :class:`~latentcv.cv_models.data.frames.Frame`): ``cell`` is [3, 3] with the
lattice vectors a, b, c as rows, so a Cartesian point is ``r = s @ cell`` for fractional
coordinates ``s``.
"""

from __future__ import annotations

import numpy as np


def lammps_cell(lx: float, ly: float, lz: float, xy: float = 0.0, xz: float = 0.0, yz: float = 0.0) -> np.ndarray:
    """[3, 3] cell (rows a, b, c) of a LAMMPS restricted-triclinic box.

    a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz); lengths in the box's unit.
    """
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]], dtype=np.float64)


def minimum_image(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Displacements [..., 3] reduced by rounding their fractional coordinates.

    Exact for vectors shorter than half the smallest perpendicular width of the cell
    (bonds, intramolecular vectors); for neighbour searches use :func:`neighbour_pairs`.
    """
    inv = np.linalg.inv(cell)
    f = d @ inv
    f -= np.round(f)
    return f @ cell


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """[3] distances between opposite faces of the cell (its widths along the normals)."""
    volume = abs(np.linalg.det(cell))
    a, b, c = cell
    return volume / np.array(
        [np.linalg.norm(np.cross(b, c)), np.linalg.norm(np.cross(c, a)), np.linalg.norm(np.cross(a, b))]
    )


def neighbour_pairs(
    points: np.ndarray, cell: np.ndarray, cutoff: float, *, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All directed pairs (i, j, image) with |r_j + n·cell − r_i| < cutoff, i ≠ j or n ≠ 0.

    Works for any cutoff and any (triclinic) cell: every periodic image of j within the
    cutoff is returned, so a small box gives the same neighbour count as a large one.
    Cost O(N²) in chunks (analysis sizes, a few thousand points).

    Args:
        points: [N, 3] positions (any image).
        cell: [3, 3] rows are lattice vectors.
        cutoff: neighbour distance, same unit as ``points``.
    Returns:
        i [P] int64, j [P] int64, d [P, 3] displacement r_j(image) − r_i.
    """
    points = np.asarray(points, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    n = len(points)
    inv = np.linalg.inv(cell)
    frac = points @ inv
    frac -= np.floor(frac)
    # after rounding a fractional difference lies in [-1/2, 1/2]; an image n is needed
    # only if |f + n| * width <= cutoff.
    k = np.floor(cutoff / perpendicular_widths(cell) + 0.5).astype(int)
    shifts = np.array(
        [(a, b, c) for a in range(-k[0], k[0] + 1) for b in range(-k[1], k[1] + 1) for c in range(-k[2], k[2] + 1)],
        dtype=np.float64,
    )
    cut2 = cutoff * cutoff
    out_i, out_j, out_d = [], [], []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        df = frac[None, :, :] - frac[start:stop, None, :]  # [C, N, 3]
        df -= np.round(df)
        for s in shifts:
            d = (df + s) @ cell
            r2 = np.einsum("cnk,cnk->cn", d, d)
            mask = r2 < cut2
            if not s.any():
                idx = np.arange(start, stop)
                mask[idx - start, idx] = False
            ci, cj = np.nonzero(mask)
            out_i.append(ci + start)
            out_j.append(cj)
            out_d.append(d[ci, cj])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    return (
        np.concatenate(out_i).astype(np.int64),
        np.concatenate(out_j).astype(np.int64),
        np.concatenate(out_d),
    )
