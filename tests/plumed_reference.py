"""Independent NumPy/SciPy references of PLUMED's Steinhardt chain (Ql → LOCAL_Ql, CUBIC
switches), for the tests of compare's PLUMED CVs (largest solid cluster, ice count)."""

from __future__ import annotations

import numpy as np
from scipy.special import sph_harm_y


def cubic(x: np.ndarray, d0: float, dmax: float) -> np.ndarray:
    """PLUMED's CUBIC switching function: 1 below d0, 0 above dmax."""
    t = np.clip((x - d0) / (dmax - d0), 0.0, 1.0)
    return (t - 1.0) ** 2 * (1.0 + 2.0 * t)


def local_ql(positions: np.ndarray, cell: np.ndarray, l: int, d0: float, dmax: float) -> tuple[np.ndarray, np.ndarray]:
    """[N] LOCAL_Ql(i) = Σ_j s_ij Re(q̂l(i)·q̂l(j)*) with qlm(i) = Σ_j s_ij Ylm(r̂_ij),
    s = CUBIC(r; d0, dmax) over minimum images of ``cell`` [3, 3] (rows: lattice vectors),
    and the [N, N] switch matrix s."""
    d = positions[None, :, :] - positions[:, None, :]
    frac = d @ np.linalg.inv(cell)
    d = (frac - np.round(frac)) @ cell
    r = np.linalg.norm(d, axis=-1)
    np.fill_diagonal(r, np.inf)
    s = cubic(r, d0, dmax)
    polar = np.arccos(np.clip(d[..., 2] / np.where(np.isinf(r), 1.0, r), -1.0, 1.0))
    azimuth = np.arctan2(d[..., 1], d[..., 0])
    q = np.stack([(s * sph_harm_y(l, m, polar, azimuth)).sum(axis=1) for m in range(-l, l + 1)], axis=1)
    q_hat = q / np.linalg.norm(q, axis=1, keepdims=True)
    return (s * np.real(q_hat @ q_hat.conj().T)).sum(axis=1), s


def displaced_frames(x: np.ndarray, probes: list[tuple[int, int]], h: float) -> list[np.ndarray]:
    """``x`` [N, 3] followed, for each (atom, axis) of ``probes``, by x moved +h and −h along
    it: the frames of a central-difference check through ``plumed driver``."""
    frames = [x]
    for k, axis in probes:
        for sign in (1, -1):
            moved = x.copy()
            moved[k, axis] += sign * h
            frames.append(moved)
    return frames
