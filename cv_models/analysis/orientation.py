"""Orientational order of linear molecules (the trimer rods): P2 of the molecule axes.

The axis of a molecule is the unit vector from its first to its last atom (molecules made
whole first). With the order tensor Q = <3/2 u u - 1/2 I> over molecules, the nematic
order S is its largest eigenvalue and the director n its eigenvector: S = 1 for rods all
parallel, ~0 for random axes (about 1.5/sqrt(M) for M molecules, from finite sampling).
The per-molecule local order is the mean P2(u_i . u_j) = (3 cos^2 - 1)/2 over the
neighbours j of molecule i (centres within ``cutoff``): ~1 in the aligned crystal, ~0 in
an isotropic melt, and it does not need a global director (interfaces, grains).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.data.molecules import frame_centers, make_whole
from latentcv.cv_models.data.pbc import neighbour_pairs


def molecule_axes(frame: Frame) -> np.ndarray:
    """[M, 3] unit vectors from the first to the last atom of each (whole) molecule."""
    apm = frame.atoms_per_molecule
    if apm < 2:
        raise ValueError("molecule axes need molecules of at least two atoms")
    p = make_whole(frame.positions, frame.cell, apm, frame.bonds).reshape(-1, apm, 3)
    u = p[:, -1] - p[:, 0]
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def nematic_order(axes: np.ndarray) -> tuple[float, np.ndarray]:
    """(S, director): largest eigenvalue of the order tensor of unit ``axes`` [M, 3]."""
    u = np.asarray(axes, dtype=np.float64)
    q = 1.5 * np.einsum("mi,mj->ij", u, u) / len(u) - 0.5 * np.eye(3)
    w, v = np.linalg.eigh(q)
    return float(w[-1]), v[:, -1]


@dataclass
class OrientationResult:
    """Orientational order of one frame.

    Attributes:
        nematic: global nematic order S; director: [3] its axis.
        local_p2: [M] mean P2(u_i . u_j) over the neighbours of each molecule (0 without
            neighbours); mean_local_p2: its mean.
    """

    nematic: float
    director: np.ndarray
    local_p2: np.ndarray

    @property
    def mean_local_p2(self) -> float:
        return float(self.local_p2.mean()) if self.local_p2.size else 0.0


def orientation_frame(frame: Frame, cutoff: float) -> OrientationResult:
    """Global nematic order and per-molecule local P2 (neighbour centres within ``cutoff``)."""
    u = molecule_axes(frame)
    s, director = nematic_order(u)
    i, j, _ = neighbour_pairs(frame_centers(frame), frame.cell, cutoff)
    p2 = 1.5 * np.einsum("pk,pk->p", u[i], u[j]) ** 2 - 0.5
    n = len(u)
    nb = np.bincount(i, minlength=n)
    local = np.bincount(i, weights=p2, minlength=n) / np.maximum(nb, 1)
    return OrientationResult(nematic=s, director=director, local_p2=local)
