"""Per-molecule crystal labels (the crystal head's targets) that do not fire by chance.

Three criteria on molecule centres, each over a neighbourhood of every molecule:

- ``"ten_wolde"``: the solid-bond criterion of :mod:`.tenwolde` (normalised q6 bond
  order above ``bond_threshold``, at least ``min_solid_bonds`` solid bonds);
- ``"local_p2"``: the mean P2 of the molecule axis with its neighbours' axes above
  ``p2_threshold`` (orientationally ordered crystals of linear molecules, :mod:`.orientation`);
- ``"chill_plus"``: CHILL+ of :mod:`.ice` (water, tetrahedral crystals): crystal when
  cubic or hexagonal ice, over every centre within ``cutoff`` (3.5 Å for water; CHILL+
  needs exactly 4 there, so only the cutoff mode, ``neighbours = 0``, applies).

The neighbourhood is either the ``neighbours`` nearest centres (every periodic image;
the default, 12: the first shell of fcc/hcp packings) or, with ``neighbours = 0``, every
centre within ``cutoff`` (the old labels). Over a cutoff a melt molecule may have only a
few neighbours, and a mean over five axes passes a P2 test by chance; over the 12 nearest
the chance is far smaller (measured in ``benchmarks/label_rates.py``, docs/results.md).
``min_neighbours`` (cutoff mode) labels a molecule with fewer neighbours non-crystal.

``target = "close_packed"`` keeps only molecules whose local structure is fcc/hcp-like,
by a common-neighbour test on the 12 nearest neighbours (adaptive CNA, Stukowski,
Modelling Simul. Mater. Sci. Eng. 20, 045021 (2012)): with the local cutoff
(1+√2)/2 × their mean distance, a neighbour of an fcc (hcp) molecule shares 4 common
neighbours with it, bonded by 2 bonds (CNA signatures 421 and 422); a molecule needs at
least ``close_packed_min`` such neighbours of its 12 (8: thermal noise breaks a few).
``target = "fcc"`` asks for the same number of 421 neighbours alone: the two bonds among
the 4 common neighbours are apart in fcc (421, all 12) and share a neighbour in half of
hcp's (422), so hcp stacking (6 of 12) is not the target there. A
bcc lattice has none (its 12 nearest are 8 + 4 of the 6 second neighbours). Ten Wolde's
bond order alone calls bcc solid (q6 = 0.51, fcc 0.57), and a bias on a count of such
molecules can drive the box into a bcc-like or defective state and stop there. The
Lechner–Dellago averaged q̄4 (J. Chem. Phys. 129, 114707 (2008)) does not separate them
over 12 neighbours: fcc 0.191, hcp 0.097, bcc 0.085–0.092 (0.036 only over its 14).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import pi

import numpy as np

from latentcv.cv_models.analysis.ice import IceConfig, chill_plus
from latentcv.cv_models.analysis.orientation import molecule_axes
from latentcv.cv_models.analysis.tenwolde import spherical_harmonics
from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.data.molecules import frame_centers
from latentcv.cv_models.data.pbc import neighbour_pairs

LABEL_CRITERIA = ("ten_wolde", "local_p2", "chill_plus")
LABEL_TARGETS = ("any", "close_packed", "fcc")
CLOSE_PACKED_NEIGHBOURS = 12


@dataclass
class LabelConfig:
    """How molecules are labelled crystal.

    Attributes:
        criterion: "ten_wolde", "local_p2" or "chill_plus" (cubic or hexagonal ice by
            CHILL+ over the centres within ``cutoff``; needs ``neighbours = 0``).
        cutoff: neighbour distance of the cutoff mode (``neighbours = 0``), molecule
            centres, the frame's length unit.
        neighbours: the number of nearest centres each molecule is judged over (12); 0:
            every centre within ``cutoff``.
        min_neighbours: cutoff mode only: fewer neighbours than this → not crystal (0: off).
        p2_threshold: "local_p2": crystal above this mean P2.
        bond_threshold, min_solid_bonds: "ten_wolde": a bond is solid above this
            normalised q6·q6; a molecule is solid with at least this many (0.5, 8).
        target: "any" (the criterion alone), "close_packed" (also fcc/hcp-like: at least
            ``close_packed_min`` of the 12 nearest neighbours with the 421/422 signature) or
            "fcc" (at least ``close_packed_min`` with the 421 signature: fcc, not hcp).
        close_packed_min: see ``target`` (8 of 12).
    """

    criterion: str = "ten_wolde"
    cutoff: float = 1.5
    neighbours: int = 12
    min_neighbours: int = 0
    p2_threshold: float = 0.5
    bond_threshold: float = 0.5
    min_solid_bonds: int = 8
    target: str = "any"
    close_packed_min: int = 8

    def validate(self) -> None:
        """ValueError naming the first bad field."""
        if self.criterion not in LABEL_CRITERIA:
            raise ValueError(f"label criterion {self.criterion!r}: one of {LABEL_CRITERIA}")
        if self.target not in LABEL_TARGETS:
            raise ValueError(f"label target {self.target!r}: one of {LABEL_TARGETS}")
        if self.neighbours < 0 or self.min_neighbours < 0:
            raise ValueError("label neighbours and min_neighbours must be >= 0")
        if self.neighbours == 0 and not self.cutoff > 0:
            raise ValueError("labels over a cutoff (neighbours = 0) need a cutoff > 0")
        if self.criterion == "chill_plus" and (self.neighbours or self.min_neighbours):
            raise ValueError("chill_plus judges every centre within the cutoff: neighbours = 0, min_neighbours = 0")
        if self.criterion == "chill_plus" and self.target != "any":
            raise ValueError(f"label target {self.target!r} does not apply to chill_plus (ice is not close packed)")


def nearest_neighbours(points: np.ndarray, cell: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of every point (periodic images, triclinic).

    Args:
        points: [N, 3]; cell: [3, 3] rows a, b, c; k ≥ 1.
    Returns:
        i [N k], j [N k], d [N k, 3] (r_j − r_i), sorted by i, then distance.
    """
    n = len(points)
    volume = abs(float(np.linalg.det(cell)))
    r = 1.2 * (3 * (k + 1) * volume / (4 * pi * n)) ** (1 / 3)
    while True:
        i, j, d = neighbour_pairs(points, cell, r)
        if np.bincount(i, minlength=n).min() >= k:
            break
        r *= 1.25
    order = np.lexsort((np.einsum("pk,pk->p", d, d), i))
    i, j, d = i[order], j[order], d[order]
    start = np.searchsorted(i, np.arange(n))
    keep = (start[:, None] + np.arange(k)[None]).reshape(-1)
    return i[keep], j[keep], d[keep]


def neighbourhood(points: np.ndarray, cell: np.ndarray, cfg: LabelConfig) -> tuple[np.ndarray, ...]:
    """(i, j, d) pairs of the configured neighbourhood: ``cfg.neighbours`` nearest, or all within ``cfg.cutoff``."""
    if cfg.neighbours > 0:
        return nearest_neighbours(points, cell, cfg.neighbours)
    return neighbour_pairs(points, cell, cfg.cutoff)


def bond_order(n: int, i: np.ndarray, d: np.ndarray, l: int) -> np.ndarray:
    """[n, 2l+1] complex q_lm: the mean of Y_lm(r̂_ij) over each point's pairs (0 without)."""
    acc = np.zeros((n, 2 * l + 1), dtype=np.complex128)
    np.add.at(acc, i, spherical_harmonics(l, d))
    return acc / np.maximum(np.bincount(i, minlength=n), 1)[:, None]


def ten_wolde_solid(n: int, i: np.ndarray, j: np.ndarray, d: np.ndarray, cfg: LabelConfig) -> np.ndarray:
    """[n] bool: at least ``cfg.min_solid_bonds`` pairs with normalised q6(i)·q6(j) > ``cfg.bond_threshold``."""
    qlm = bond_order(n, i, d, 6)
    norm = np.sqrt((np.abs(qlm) ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.real((qlm[i] * np.conj(qlm[j])).sum(axis=1)) / (norm[i] * norm[j])
    solid_bond = np.nan_to_num(s, nan=0.0) > cfg.bond_threshold
    return np.bincount(i[solid_bond], minlength=n) >= cfg.min_solid_bonds


def common_neighbour_signatures(points: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([N] int, [N] int): how many of each point's 12 nearest neighbours have the 421 and the
    422 common-neighbour signature under the adaptive cutoff (1+√2)/2 × mean neighbour distance:
    4 common neighbours with 2 bonds among them, apart (421) or sharing a common neighbour
    (422). fcc: 12 + 0; hcp: 6 + 6; bcc: 0 + 0."""
    n, k = len(points), CLOSE_PACKED_NEIGHBOURS
    _, _, d = nearest_neighbours(points, cell, k)
    d = d.reshape(n, k, 3)
    r_cut = (1 + np.sqrt(2)) / 2 * np.linalg.norm(d, axis=2).mean(axis=1)
    bonded = np.linalg.norm(d[:, :, None] - d[:, None, :], axis=3) < r_cut[:, None, None]
    bonded[:, np.arange(k), np.arange(k)] = False
    a = bonded.astype(np.int64)  # [N, 12, 12] bonds among the neighbours
    common = a.sum(axis=2)  # common neighbours of the point and neighbour j
    bonds = np.einsum("nja,nab,njb->nj", a, a, a) // 2  # bonds among those
    close_packed = (common == 4) & (bonds == 2)
    degree = a * np.einsum("nab,njb->nja", a, a)  # [N, j, a] bonds of common neighbour a among them
    apart = degree.max(axis=2) == 1
    return (close_packed & apart).sum(axis=1), (close_packed & ~apart).sum(axis=1)


def close_packed_neighbours(points: np.ndarray, cell: np.ndarray, fcc_only: bool = False) -> np.ndarray:
    """[N] int: how many of each point's 12 nearest neighbours have the fcc/hcp common-
    neighbour signature (421 or 422: 12 in perfect fcc and hcp, 0 in bcc); with ``fcc_only``
    the 421 signature alone (12 in fcc, 6 in hcp). :func:`common_neighbour_signatures`."""
    n421, n422 = common_neighbour_signatures(points, cell)
    return n421 if fcc_only else n421 + n422


def averaged_q(points: np.ndarray, cell: np.ndarray, l: int, k: int = CLOSE_PACKED_NEIGHBOURS) -> np.ndarray:
    """[N] Lechner–Dellago q̄_l: q_lm over the ``k`` nearest neighbours, averaged over the
    point and those neighbours, then q̄_l = sqrt(4π/(2l+1) Σ_m |q̄_lm|²) (equals freud's
    ``Steinhardt(l, average=True)`` with ``num_neighbors=k``)."""
    n = len(points)
    i, j, d = nearest_neighbours(points, cell, k)
    qlm = bond_order(n, i, d, l)
    avg = qlm.copy()
    np.add.at(avg, i, qlm[j])
    avg /= 1 + np.bincount(i, minlength=n)[:, None]
    return np.sqrt(4 * pi / (2 * l + 1) * (np.abs(avg) ** 2).sum(axis=1))


def local_p2(axes: np.ndarray, n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """[n] mean P2(u_i · u_j) over each molecule's pairs (0 without)."""
    p2 = 1.5 * np.einsum("pk,pk->p", axes[i], axes[j]) ** 2 - 0.5
    return np.bincount(i, weights=p2, minlength=n) / np.maximum(np.bincount(i, minlength=n), 1)


def crystal_molecules(frame: Frame, cfg: LabelConfig) -> np.ndarray:
    """[M] bool: the molecules of ``frame`` that ``cfg`` calls crystal."""
    cfg.validate()
    points = frame_centers(frame) if frame.atoms_per_molecule > 1 else frame.positions
    n = len(points)
    if cfg.criterion == "chill_plus":
        return chill_plus(points, frame.cell, IceConfig(cutoff=cfg.cutoff)).ice
    i, j, d = neighbourhood(points, frame.cell, cfg)
    if cfg.criterion == "ten_wolde":
        crystal = ten_wolde_solid(n, i, j, d, cfg)
    else:
        crystal = local_p2(molecule_axes(frame), n, i, j) > cfg.p2_threshold
    if cfg.neighbours == 0 and cfg.min_neighbours:
        crystal &= np.bincount(i, minlength=n) >= cfg.min_neighbours
    if cfg.target != "any":
        fcc_only = cfg.target == "fcc"
        crystal &= close_packed_neighbours(points, frame.cell, fcc_only) >= cfg.close_packed_min
    return crystal


def molecule_labels(frame: Frame, cfg: LabelConfig) -> np.ndarray:
    """[M] int64 per-molecule phase labels: CRYSTAL (1) or MELT (0)."""
    return crystal_molecules(frame, cfg).astype(np.int64)
