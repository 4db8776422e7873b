"""Periodic-boundary helpers of the readers and the analysis: NumPy faces of
:mod:`latentcv.cv_models.graphs`, where the geometry is written once (triclinic).

Convention (as in :class:`~latentcv.cv_models.data.frames.Frame`): ``cell`` is [3, 3] with the
lattice vectors a, b, c as rows, so a Cartesian point is ``r = s @ cell`` for fractional
coordinates ``s``.
"""

from __future__ import annotations

import numpy as np
import torch

from latentcv.cv_models import graphs


def lammps_cell(lx: float, ly: float, lz: float, xy: float = 0.0, xz: float = 0.0, yz: float = 0.0) -> np.ndarray:
    """[3, 3] cell (rows a, b, c) of a LAMMPS restricted-triclinic box.

    a = (lx, 0, 0), b = (xy, ly, 0), c = (xz, yz, lz); lengths in the box's unit.
    """
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]], dtype=np.float64)


def minimum_image(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Displacements [..., 3] reduced by rounding their fractional coordinates
    (:func:`latentcv.cv_models.graphs.minimum_image` on NumPy arrays, float64).

    Exact for vectors shorter than half the smallest perpendicular width of the cell
    (bonds, intramolecular vectors); for neighbour searches use :func:`neighbour_pairs`.
    """
    d = torch.as_tensor(np.asarray(d, dtype=np.float64))
    return graphs.minimum_image(d, torch.as_tensor(np.asarray(cell, dtype=np.float64))).numpy()


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """[3] distances between opposite faces of the cell (its widths along the normals)."""
    return graphs.perpendicular_widths(torch.as_tensor(np.asarray(cell, dtype=np.float64))).numpy()


def neighbour_pairs(points: np.ndarray, cell: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All directed pairs (i, j, image) with |r_j + n·cell − r_i| < cutoff, i ≠ j or n ≠ 0
    (:func:`latentcv.cv_models.graphs.neighbor_list` on NumPy arrays, float64).

    Works for any cutoff and any (triclinic) cell: every periodic image of j within the
    cutoff is returned, so a small box gives the same neighbour count as a large one.

    Args:
        points: [N, 3] positions (any image).
        cell: [3, 3] rows are lattice vectors.
        cutoff: neighbour distance, same unit as ``points``.
    Returns:
        i [P] int64, j [P] int64, d [P, 3] displacement r_j(image) − r_i.
    """
    c = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(-1, 3)
    h = torch.as_tensor(np.asarray(cell, dtype=np.float64))
    edge_index, shift = graphs.neighbor_list(c, h, float(cutoff))
    d = graphs.edge_vectors(c, h, edge_index, shift)
    return edge_index[0].numpy(), edge_index[1].numpy(), d.numpy()
