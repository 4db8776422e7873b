"""Crystallinity judged by independent, well-kept implementations.

Whether a run crystallised must not be decided by the CV under test, nor only by our own
code. This module asks two PyPI packages:

- freud (``freud-analysis``): :class:`freud.order.SolidLiquid`, the ten Wolde solid-bond
  criterion (q6·q6 > 0.5 normalised, solid with >= 8 solid bonds), as a solid fraction;
- OVITO (``ovito``, optional, ``make bench-deps``): polyhedral template matching, the
  fractions of fcc / hcp / bcc / icosahedral / other environments.

Molecules are reduced to their centres first (the encoder's centres,
:func:`~latentcv.cv_models.data.molecules.frame_centers`). A frame is
crystallised when its solid fraction exceeds ``threshold``; a run crystallised at the
first step from which that holds for ``hold`` steps (:func:`first_crystallisation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.data.molecules import frame_centers


def _freud_system(frame: Frame):
    import freud

    box = freud.box.Box.from_matrix(np.asarray(frame.cell, dtype=np.float64).T)
    return box, box.wrap(frame_centers(frame))


def _solid_liquid(frame: Frame, cutoff: float):
    """freud's ``SolidLiquid`` (ten Wolde thresholds) computed on the frame's molecule centres."""
    import freud

    sl = freud.order.SolidLiquid(l=6, q_threshold=0.5, solid_threshold=8, normalize_q=True)
    sl.compute(_freud_system(frame), neighbors={"r_max": float(cutoff)})
    return sl


def freud_solid(frame: Frame, cutoff: float) -> np.ndarray:
    """[M] bool: ten Wolde solid particles according to freud's ``SolidLiquid``."""
    return np.asarray(_solid_liquid(frame, cutoff).num_connections) >= 8


def freud_largest_cluster(frame: Frame, cutoff: float) -> int:
    """Molecules in the largest cluster of ten Wolde solid particles joined by solid bonds
    (freud ``SolidLiquid.largest_cluster_size``): the n_max of nucleation studies."""
    return int(_solid_liquid(frame, cutoff).largest_cluster_size)


def crystalline_molecules(frame: Frame, criterion: str, cutoff: float) -> np.ndarray:
    """[M] bool per-molecule reference labels: ``"ten_wolde"`` (ours), ``"local_p2"``
    (local orientational order of the molecule axes > 0.5) or ``"chill_plus"`` (cubic or
    hexagonal ice by CHILL+, water)."""
    if criterion == "chill_plus":
        from latentcv.cv_models.analysis.ice import IceConfig, chill_plus_frame

        labels = chill_plus_frame(frame, IceConfig(cutoff=cutoff)).labels
        return (labels == 1) | (labels == 2)
    if criterion == "local_p2":
        from latentcv.cv_models.analysis.orientation import orientation_frame

        return orientation_frame(frame, cutoff).local_p2 > 0.5
    from latentcv.cv_models.analysis.tenwolde import TenWoldeConfig, ten_wolde_frame

    return ten_wolde_frame(frame, TenWoldeConfig(cutoff=cutoff)).solid


def largest_crystalline_cluster(frame: Frame, criterion: str, cutoff: float, link: float = 0.0) -> int:
    """n_max, the molecules in the largest crystalline cluster by ``criterion``:
    ``"ten_wolde"``: freud's solid particles joined by solid bonds
    (:func:`freud_largest_cluster`); ``"local_p2"``, ``"chill_plus"``: the crystalline
    molecules of :func:`crystalline_molecules` joined when their centres are within
    ``link`` (0: ``cutoff``; freud's ``Cluster``)."""
    if criterion == "ten_wolde":
        if link:
            raise ValueError("ten Wolde clusters are joined by their solid bonds: no link distance")
        return freud_largest_cluster(frame, cutoff)
    import freud

    crystalline = np.flatnonzero(crystalline_molecules(frame, criterion, cutoff))
    if crystalline.size == 0:
        return 0
    box, points = _freud_system(frame)
    clusters = freud.cluster.Cluster()
    clusters.compute((box, points[crystalline]), neighbors={"r_max": float(link or cutoff)})
    return int(np.bincount(clusters.cluster_idx).max())


def freud_solid_fraction(frame: Frame, cutoff: float) -> float:
    """Fraction of solid particles (freud ``SolidLiquid``, ten Wolde thresholds)."""
    s = freud_solid(frame, cutoff)
    return float(s.mean()) if s.size else 0.0


STRUCTURES = ("fcc", "hcp", "bcc", "ico", "other")


def ovito_data(frame: Frame):
    """An OVITO DataCollection of the frame's molecule centres (wrapped) and periodic cell
    (OVITO's structure analyses: PTM here, diamond and CHILL+ in :mod:`.ice`).

    Raises ImportError naming ``make bench-deps`` when OVITO is not installed."""
    try:
        from ovito.data import DataCollection, Particles, SimulationCell
    except ImportError as e:  # pragma: no cover - depends on the optional install
        raise ImportError("OVITO is not installed: run `make bench-deps` (it is optional, ~200 MB)") from e
    pts = frame_centers(frame)
    cell = np.asarray(frame.cell, dtype=np.float64)
    data = DataCollection()
    mat = np.zeros((3, 4))
    mat[:, :3] = cell.T  # OVITO: columns are the cell vectors, then the origin
    data.objects.append(SimulationCell(matrix=mat, pbc=(True, True, True)))
    frac = pts @ np.linalg.inv(cell)
    particles = Particles()
    particles.create_property("Position", data=(frac - np.floor(frac)) @ cell)
    data.objects.append(particles)
    return data


def ovito_structures(frame: Frame) -> dict[str, float]:
    """Fractions of fcc / hcp / bcc / icosahedral / other environments from OVITO's
    polyhedral template matching (default RMSD cutoff), on atoms or molecule centres.

    Raises ImportError naming ``make bench-deps`` when OVITO is not installed."""
    data = ovito_data(frame)
    from ovito.modifiers import PolyhedralTemplateMatchingModifier

    data.apply(PolyhedralTemplateMatchingModifier())
    n = max(len(frame_centers(frame)), 1)
    counts = {
        k: data.attributes[f"PolyhedralTemplateMatching.counts.{k.upper()}"] / n for k in ("fcc", "hcp", "bcc", "ico")
    }
    counts["other"] = 1.0 - sum(counts.values())
    return counts


@dataclass
class Crystallisation:
    """When a run first crystallised.

    Attributes:
        step: first MD step from which the solid fraction stays above the threshold for
            ``hold`` steps (None: never within the run).
        threshold, hold: the criterion.
    """

    step: int | None
    threshold: float
    hold: int


def first_crystallisation(
    steps: np.ndarray, solid_fraction: np.ndarray, threshold: float = 0.8, hold: int = 5000
) -> Crystallisation:
    """First step s with ``solid_fraction > threshold`` at every sampled step in
    [s, s + hold]; the run must extend to s + hold.

    Args:
        steps: [T] increasing MD steps of the sampled frames.
        solid_fraction: [T] independent solid fraction of those frames.
    """
    steps = np.asarray(steps, dtype=np.int64)
    above = np.asarray(solid_fraction) > threshold
    for k in np.flatnonzero(above):
        end = steps[k] + hold
        if steps[-1] < end:
            break
        window = (steps >= steps[k]) & (steps <= end)
        if above[window].all():
            return Crystallisation(int(steps[k]), threshold, hold)
    return Crystallisation(None, threshold, hold)


class CrystallisationWatch:
    """Follows a LAMMPS dump while the run writes it: reads only the new frames, keeps
    their crystalline fraction (``fraction(frame) -> float``), and says from which step
    the run crystallised (:func:`first_crystallisation`), so a run can stop there.
    ``units``: the LAMMPS units style of the dump (its frames' length unit)."""

    def __init__(self, dump, fraction, threshold: float = 0.8, hold: int = 5000, units: str = "lj") -> None:
        self.dump = dump
        self.units = units
        self.fraction = fraction
        self.threshold = threshold
        self.hold = hold
        self.steps: list[int] = []
        self.values: list[float] = []

    def update(self) -> int | None:
        """Read the frames added since the last call; the crystallisation step or None."""
        from pathlib import Path

        from latentcv.cv_models.data import read_lammps_dump

        if not Path(self.dump).exists():
            return None
        frames = read_lammps_dump(self.dump, units=self.units, start=len(self.steps))
        self.steps += [f.timestep for f in frames]
        self.values += [self.fraction(f) for f in frames]
        if not self.steps:
            return None
        return first_crystallisation(np.array(self.steps), np.array(self.values), self.threshold, self.hold).step
