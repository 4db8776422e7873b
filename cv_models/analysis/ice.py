"""Ice or liquid, per molecule: CHILL+ on freud's q3 harmonics, and OVITO's judges.

CHILL+ (Nguyen & Molinero, J. Phys. Chem. B 119, 9369 (2015)) classifies each water
molecule (an mW particle, or an oxygen) from the bonds to its neighbours within
``cutoff`` (3.5 Å):

- q3m(i) = Σ_j Y3m(r̂_ij) over those neighbours (freud ``Steinhardt(l=3)``, per-particle
  harmonics); the bond correlation c(i, j) = Re Σ_m q3m(i) q3m(j)* / (|q3(i)| |q3(j)|);
- a bond is *staggered* if c < −0.8 and *eclipsed* if −0.35 < c < 0.25;
- a molecule with exactly 4 neighbours is cubic ice with 4 staggered bonds, hexagonal ice
  with 3 staggered and 1 eclipsed, interfacial ice with 2 staggered, or 3 staggered and no
  eclipsed; everything else (other coordinations; CHILL+'s clathrate classes, 3–4
  eclipsed bonds, which mW does not form at 1 atm) is liquid.

The ice fraction counts cubic + hexagonal molecules (interfacial ice, also common in the
supercooled liquid, is reported apart); the largest ice cluster is the largest set of
cubic/hexagonal molecules joined by neighbour bonds (freud ``Cluster``), the n_max of
nucleation studies. OVITO's diamond-structure identification (first and second
neighbours; optional, ``make bench-deps``) is the second, independent judge:
:func:`ovito_diamond`; OVITO's own CHILL+ (:func:`ovito_chill_plus`) checks this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.data.molecules import frame_centers
from latentcv.cv_models.analysis.crystallinity import ovito_data

__all__ = [
    "ICE_LABELS",
    "IceConfig",
    "IceResult",
    "chill_plus",
    "chill_plus_frame",
    "ice_fraction",
    "ovito_diamond",
    "ovito_chill_plus",
]

# label codes of IceResult.labels, in this order
ICE_LABELS = ("liquid", "hexagonal", "cubic", "interfacial")
LIQUID, HEXAGONAL, CUBIC, INTERFACIAL = range(4)


@dataclass(frozen=True)
class IceConfig:
    """CHILL+ settings (lengths in the frame's unit; the defaults are Å, for water).

    Attributes:
        cutoff: neighbour cutoff, about the first minimum of the O–O g(r) (3.5 Å).
        staggered: a bond with c(i, j) below this is staggered.
        eclipsed: (low, high): a bond with c(i, j) strictly inside is eclipsed.
    """

    cutoff: float = 3.5
    staggered: float = -0.8
    eclipsed: tuple[float, float] = (-0.35, 0.25)


@dataclass
class IceResult:
    """CHILL+ labels of one configuration.

    Attributes:
        labels: [N] codes into :data:`ICE_LABELS` (0 liquid, 1 hexagonal, 2 cubic, 3 interfacial).
        n_staggered, n_eclipsed, coordination: [N] bond counts and neighbours within the cutoff.
        largest_cluster: molecules in the largest cluster of cubic/hexagonal ice.
    """

    labels: np.ndarray
    n_staggered: np.ndarray
    n_eclipsed: np.ndarray
    coordination: np.ndarray
    largest_cluster: int

    @property
    def ice(self) -> np.ndarray:
        """[N] bool: cubic or hexagonal ice."""
        return (self.labels == CUBIC) | (self.labels == HEXAGONAL)

    @property
    def ice_fraction(self) -> float:
        """Share of cubic + hexagonal molecules."""
        return float(self.ice.mean()) if self.labels.size else 0.0

    def fraction(self, label: str) -> float:
        """Share of molecules with ``label`` (one of :data:`ICE_LABELS`)."""
        return float((self.labels == ICE_LABELS.index(label)).mean()) if self.labels.size else 0.0


def _freud_system(points: np.ndarray, cell: np.ndarray):
    """freud's box and wrapped points of any cell: the frame is rotated first so that a lies
    along x and b in the xy plane (freud's and LAMMPS's triclinic form; CHILL+ is rotation
    invariant)."""
    import freud

    h = np.asarray(cell, dtype=np.float64)
    q, r = np.linalg.qr(h.T)  # h q = r.T, lower triangular
    q = q * np.sign(np.diag(r))[None, :]
    box = freud.box.Box.from_matrix((h @ q).T)
    return box, box.wrap(np.asarray(points, dtype=np.float64) @ q)


def chill_plus(points: np.ndarray, cell: np.ndarray, config: IceConfig | None = None) -> IceResult:
    """CHILL+ labels of ``points`` ([N, 3]) in the periodic ``cell`` ([3, 3], rows are the
    lattice vectors; triclinic allowed); see the module docstring."""
    import freud

    cfg = config or IceConfig()
    box, pts = _freud_system(points, cell)
    n = len(pts)
    nlist = freud.locality.AABBQuery(box, pts).query(pts, {"r_max": cfg.cutoff, "exclude_ii": True}).toNeighborList()
    st = freud.order.Steinhardt(l=3)
    st.compute((box, pts), neighbors=nlist)
    q = np.asarray(st.particle_harmonics)  # [N, 2l+1] complex
    i, j = np.asarray(nlist.query_point_indices), np.asarray(nlist.point_indices)
    norm = np.linalg.norm(q, axis=1)
    c = np.real(np.sum(q[i] * np.conj(q[j]), axis=1)) / np.maximum(norm[i] * norm[j], 1e-300)
    lo, hi = cfg.eclipsed
    n_st = np.bincount(i, weights=c < cfg.staggered, minlength=n).astype(np.int64)
    n_ec = np.bincount(i, weights=(c > lo) & (c < hi), minlength=n).astype(np.int64)
    coord = np.bincount(i, minlength=n)
    labels = _classify(n_st, n_ec, coord)
    ice = (labels == CUBIC) | (labels == HEXAGONAL)
    return IceResult(labels, n_st, n_ec, coord, _largest_cluster(box, pts, ice, i, j))


def _classify(n_st: np.ndarray, n_ec: np.ndarray, coord: np.ndarray) -> np.ndarray:
    """CHILL+'s rules on the bond counts (4-coordinated molecules only)."""
    four = coord == 4
    labels = np.full(len(coord), LIQUID, dtype=np.int64)
    clathrate = n_ec >= 3
    labels[four & ~clathrate & (n_st == 4)] = CUBIC
    labels[four & ~clathrate & (n_st == 3) & (n_ec == 1)] = HEXAGONAL
    labels[four & ~clathrate & (((n_st == 3) & (n_ec == 0)) | (n_st == 2))] = INTERFACIAL
    return labels


def _largest_cluster(box, pts: np.ndarray, ice: np.ndarray, i: np.ndarray, j: np.ndarray) -> int:
    """Size of the largest set of ice molecules joined by neighbour bonds (freud ``Cluster``)."""
    import freud

    idx = np.flatnonzero(ice)
    if idx.size == 0:
        return 0
    keep = ice[i] & ice[j]
    remap = np.full(len(ice), -1, dtype=np.int64)
    remap[idx] = np.arange(idx.size)
    sub = pts[idx]
    qi, pj = remap[i[keep]], remap[j[keep]]  # still sorted by query point
    nlist = freud.locality.NeighborList.from_arrays(idx.size, idx.size, qi, pj, box.wrap(sub[pj] - sub[qi]))
    cl = freud.cluster.Cluster()
    cl.compute((box, sub), neighbors=nlist)
    return int(np.bincount(np.asarray(cl.cluster_idx)).max())


def chill_plus_frame(frame: Frame, config: IceConfig | None = None) -> IceResult:
    """:func:`chill_plus` of a Frame's molecule centres (mW: the particles themselves)."""
    return chill_plus(frame_centers(frame), frame.cell, config)


def ice_fraction(frame: Frame, cutoff: float = 3.5) -> float:
    """Share of cubic + hexagonal ice molecules (CHILL+, neighbours within ``cutoff``)."""
    return chill_plus_frame(frame, IceConfig(cutoff=cutoff)).ice_fraction


DIAMOND_TYPES = ("other", "cubic", "cubic_first", "cubic_second", "hexagonal", "hexagonal_first", "hexagonal_second")


def ovito_diamond(frame: Frame) -> dict[str, float]:
    """Fractions of OVITO's ``IdentifyDiamondModifier`` structure types (cubic / hexagonal
    diamond and their first and second neighbours, other: :data:`DIAMOND_TYPES`) of the
    molecule centres: the judge independent of CHILL+ (first and second neighbour shells)."""
    from ovito.modifiers import IdentifyDiamondModifier

    data = ovito_data(frame)
    data.apply(IdentifyDiamondModifier())
    types = np.asarray(data.particles["Structure Type"])
    return {name: float(np.mean(types == k)) for k, name in enumerate(DIAMOND_TYPES)}


def ovito_chill_plus(frame: Frame, cutoff: float = 3.5) -> np.ndarray:
    """[N] labels (codes of :data:`ICE_LABELS`) of OVITO's own ``ChillPlusModifier``: the
    same algorithm, implemented independently (its hydrate classes read as liquid)."""
    from ovito.modifiers import ChillPlusModifier

    data = ovito_data(frame)
    data.apply(ChillPlusModifier(cutoff=cutoff))
    types = np.asarray(data.particles["Structure Type"])  # other, hexagonal, cubic, interfacial, hydrates
    return np.where(types <= INTERFACIAL, types, LIQUID).astype(np.int64)
