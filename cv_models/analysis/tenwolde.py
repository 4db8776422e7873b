"""Steinhardt bond order and the ten Wolde solid-bond criterion (NumPy, model-independent).

For each particle i with neighbours j within ``cutoff`` (periodic, triclinic, all images):

    q_lm(i) = 1/N_b(i) Σ_j Y_lm(r̂_ij)                    (complex, m = −l..l)
    q_l(i)  = sqrt(4π/(2l+1) Σ_m |q_lm(i)|²)              (Steinhardt, per particle)
    s_ij    = Re Σ_m q_lm(i) q_lm(j)* / (|q_l(i)| |q_l(j)|)   (normalised bond order)

A bond is *solid* if s_ij > ``bond_threshold`` (0.5) and a particle is *solid* if it has
at least ``min_solid_bonds`` (8) solid bonds (ten Wolde, Ruiz-Montero, Frenkel, J. Chem.
Phys. 104, 9932 (1996), with the common l = 6 thresholds). Global order: the mean of
q_l(i) (what PLUMED's ``Q6 ... VMEAN`` reports) and the bond-averaged
Q_l = sqrt(4π/(2l+1) Σ_m |Σ_ij Y_lm / Σ_i N_b|²), which vanishes in a liquid.

Reference values of q6 for perfect lattices: fcc (12 neighbours) 0.5745, hcp 0.4848,
bcc with 8+6 neighbours 0.5106, simple cubic 0.3536.

For molecules (the LJ dimers) the analysis runs on molecule centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial, pi, sqrt

import numpy as np

from latentcv.cv_models.analysis.rdf import suggest_cutoff_points
from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.data.molecules import connected_components, frame_centers
from latentcv.cv_models.data.pbc import neighbour_pairs


def spherical_harmonics(l: int, vectors: np.ndarray) -> np.ndarray:
    """Complex Y_lm of the directions of ``vectors``, m = −l..l (Condon–Shortley phase).

    Written from Cartesian components, with sinᵐθ e^{imφ} = ((x+iy)/r)ᵐ and the
    associated Legendre recurrence on the remaining polynomial in cos θ, so there is no
    singularity on the z axis. Matches ``scipy.special.sph_harm_y(l, m, θ, φ)``.

    Args:
        l: degree ≥ 0.
        vectors: [P, 3] nonzero vectors.
    Returns:
        [P, 2l+1] complex128; column l + m holds Y_lm.
    """
    v = np.asarray(vectors, dtype=np.float64)
    r = np.linalg.norm(v, axis=-1)
    z = v[..., 2] / r
    w = (v[..., 0] + 1j * v[..., 1]) / r  # sinθ e^{iφ}
    out = np.empty(v.shape[:-1] + (2 * l + 1,), dtype=np.complex128)
    wm = np.ones_like(w)
    for m in range(l + 1):
        # P̃_m^m = (−1)^m (2m−1)!!, then upward in degree to l
        p_prev = np.zeros_like(z)
        p = np.full_like(z, (-1) ** m * float(np.prod(np.arange(2 * m - 1, 0, -2))) if m else 1.0)
        for deg in range(m + 1, l + 1):
            p, p_prev = ((2 * deg - 1) * z * p - (deg + m - 1) * p_prev) / (deg - m), p
        norm = sqrt((2 * l + 1) / (4 * pi) * factorial(l - m) / factorial(l + m))
        y = norm * p * wm
        out[..., l + m] = y
        if m:
            out[..., l - m] = (-1) ** m * np.conj(y)
        wm = wm * w
    return out


@dataclass
class TenWoldeConfig:
    """Parameters of the criterion.

    Attributes:
        cutoff: neighbour distance in the frame's length unit (1.5 σ for LJ atoms; for
            dimer centres see :data:`latentcv.cv_models.systems.SYSTEMS`), or "auto": the first
            minimum after the first peak of the g(r) of the analysed points
            (:func:`latentcv.cv_models.analysis.rdf.suggest_cutoff_points`, what ``latentcv
            suggest-cutoff`` prints). A fixed 1.5 fails for molecular crystals whose
            centres sit further apart (fewer than ``min_solid_bonds`` neighbours: 0 %
            solid); "auto" follows the first neighbour shell, per configuration.
        l: Steinhardt degree (6).
        bond_threshold: s_ij above this is a solid bond (0.5).
        min_solid_bonds: solid if at least this many solid bonds (8).
        on: "auto" (molecule centres when a molecule has > 1 atom), "atoms" or "molecules".
    """

    cutoff: float | str = 1.5
    l: int = 6
    bond_threshold: float = 0.5
    min_solid_bonds: int = 8
    on: str = "auto"


@dataclass
class TenWoldeResult:
    """Per-particle and global order of one configuration.

    Attributes:
        q: [N] Steinhardt q_l per particle (0 for particles without neighbours).
        qlm: [N, 2l+1] complex q_lm per particle.
        n_neighbours: [N] neighbours within the cutoff.
        n_solid_bonds: [N] solid bonds per particle.
        solid: [N] bool, ten Wolde solid particles.
        mean_q: mean of ``q`` (PLUMED ``Q6 ... VMEAN``).
        global_q: bond-averaged Q_l of the whole configuration.
        largest_cluster: size of the largest cluster of solid particles connected by
            neighbour pairs.
        cutoff: the neighbour cutoff used (the g(r) minimum for ``cutoff="auto"``).
    """

    q: np.ndarray
    qlm: np.ndarray
    n_neighbours: np.ndarray
    n_solid_bonds: np.ndarray
    solid: np.ndarray
    mean_q: float
    global_q: float
    largest_cluster: int
    cutoff: float = 0.0

    @property
    def solid_fraction(self) -> float:
        return float(self.solid.mean()) if self.solid.size else 0.0


def steinhardt(points: np.ndarray, cell: np.ndarray, cutoff: float, l: int = 6):
    """Per-particle q_lm, q_l and the neighbour pairs.

    Args:
        points: [N, 3] positions; cell: [3, 3] rows a, b, c; cutoff in the same unit.
    Returns:
        qlm [N, 2l+1] complex, q [N], n_neighbours [N], (i [P], j [P]) pairs,
        ylm_sum [2l+1] complex (Σ over all pairs of Y_lm, for the global Q_l).
    """
    n = len(points)
    i, j, d = neighbour_pairs(points, cell, cutoff)
    ylm = spherical_harmonics(l, d)
    nb = np.bincount(i, minlength=n)
    acc = np.zeros((n, 2 * l + 1), dtype=np.complex128)
    np.add.at(acc, i, ylm)
    qlm = acc / np.maximum(nb, 1)[:, None]
    q = np.sqrt(4 * pi / (2 * l + 1) * (np.abs(qlm) ** 2).sum(axis=1))
    return qlm, q, nb, (i, j), ylm.sum(axis=0)


def neighbour_cutoff(config: TenWoldeConfig, points: np.ndarray, cell: np.ndarray) -> float:
    """``config.cutoff``, with "auto" resolved to the first g(r) minimum of ``points``."""
    if isinstance(config.cutoff, str):
        if config.cutoff != "auto":
            raise ValueError(f'TenWoldeConfig cutoff must be a distance or "auto", not {config.cutoff!r}')
        return suggest_cutoff_points(points, cell)
    return float(config.cutoff)


def ten_wolde(points: np.ndarray, cell: np.ndarray, config: TenWoldeConfig | None = None) -> TenWoldeResult:
    """Ten Wolde solid particles of a periodic configuration of points.

    Args:
        points: [N, 3] particle (or molecule-centre) positions, any image.
        cell: [3, 3] rows are lattice vectors (triclinic allowed).
    """
    cfg = config or TenWoldeConfig()
    l = cfg.l
    cutoff = neighbour_cutoff(cfg, points, cell)
    qlm, q, nb, (i, j), ysum = steinhardt(points, cell, cutoff, l)
    norm = np.sqrt((np.abs(qlm) ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.real((qlm[i] * np.conj(qlm[j])).sum(axis=1)) / (norm[i] * norm[j])
    s = np.nan_to_num(s, nan=0.0)
    solid_bond = s > cfg.bond_threshold
    n_solid = np.bincount(i[solid_bond], minlength=len(points))
    solid = n_solid >= cfg.min_solid_bonds
    both = solid[i] & solid[j]
    largest = 0
    if solid.any():
        comp = connected_components(len(points), np.stack([i[both], j[both]], axis=1))
        largest = int(np.bincount(comp[solid]).max())
    total = max(int(nb.sum()), 1)
    global_q = float(np.sqrt(4 * pi / (2 * l + 1) * (np.abs(ysum / total) ** 2).sum()))
    return TenWoldeResult(
        q=q,
        qlm=qlm,
        n_neighbours=nb,
        n_solid_bonds=n_solid,
        solid=solid,
        mean_q=float(q.mean()) if len(q) else 0.0,
        global_q=global_q,
        largest_cluster=largest,
        cutoff=cutoff,
    )


def ten_wolde_frame(frame: Frame, config: TenWoldeConfig | None = None) -> TenWoldeResult:
    """:func:`ten_wolde` of a Frame: on atoms, or on molecule centres for molecules.

    With ``config.on == "auto"`` molecules of more than one atom are reduced to their
    centres (made whole first), so per-particle results are per molecule.
    """
    cfg = config or TenWoldeConfig()
    use_centres = cfg.on == "molecules" or (cfg.on == "auto" and frame.atoms_per_molecule > 1)
    points = frame_centers(frame) if use_centres else frame.positions
    return ten_wolde(points, frame.cell, cfg)


def molecule_labels(frame: Frame, config: TenWoldeConfig | None = None) -> np.ndarray:
    """[M] int64 per-molecule phase labels of a frame from the ten Wolde criterion:
    CRYSTAL (1) for solid molecules, MELT (0) otherwise (training targets of the
    per-molecule crystal head on interface and transition frames)."""
    return ten_wolde_frame(frame, config).solid.astype(np.int64)
