"""Is a trained CV shaped for biasing? Its value against the amount of crystal.

A good nucleation CV rises smoothly and monotonically with the amount of crystal, from a
small nucleus to the whole box, and reads every crystal that forms (other stackings,
defects, any orientation) as crystal. :func:`interface_report` measures that on frames the
model never trained on (the held-out trajectory blocks), grouped by box size:

- Spearman rank correlation of ``n_crystal`` with the ten Wolde solid fraction (ours, and
  freud's independent implementation);
- agreement of the per-molecule head (p > 0.5) with the ten Wolde label of each molecule;
- calibration: least-squares slope and offset of ``n_crystal`` against the solid count;
- the reading of perfect fcc and hcp lattices (fraction ``n_crystal / M``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from latentcv.cv_models.analysis.crystallinity import crystalline_molecules, freud_solid
from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.synthetic import FCC_BASIS, lattice_positions


@dataclass
class SizeReport:
    """Scores on the held-out frames of one box size (``n_molecules``)."""

    n_molecules: int
    n_frames: int
    spearman_ten_wolde: float
    spearman_freud: float
    molecule_agreement: float
    slope: float
    offset: float
    solid_fraction_range: tuple[float, float]


@dataclass
class QualityReport:
    sizes: list[SizeReport] = field(default_factory=list)
    lattice_reading: dict[str, float] = field(default_factory=dict)

    def markdown(self) -> str:
        rows = [
            "| molecules | held-out frames | solid fraction range | Spearman(n_crystal, reference) | "
            "Spearman(n_crystal, freud ten Wolde) | head vs reference per molecule | n_crystal ≈ a·n_solid + b |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in self.sizes:
            rows.append(
                f"| {s.n_molecules} | {s.n_frames} | {s.solid_fraction_range[0]:.2f}–{s.solid_fraction_range[1]:.2f} "
                f"| {s.spearman_ten_wolde:.3f} | {s.spearman_freud:.3f} | {100 * s.molecule_agreement:.1f} % "
                f"| a = {s.slope:.2f}, b = {s.offset:.1f} |"
            )
        if self.lattice_reading:
            rows.append("")
            rows.append(
                "Perfect lattices (n_crystal / M): "
                + ", ".join(f"{k} {v:.3f}" for k, v in self.lattice_reading.items())
            )
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return asdict(self)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def lattice_frame(kind: str, n_cells: int, density: float = 1.04, noise: float = 0.0, seed: int = 0) -> Frame:
    """A perfect fcc or hcp lattice of single atoms at ``density`` (σ⁻³), optionally
    with Gaussian displacements of ``noise`` σ; orthorhombic periodic box."""
    if kind == "fcc":
        basis, shape = FCC_BASIS, np.array([1.0, 1.0, 1.0])
    elif kind == "hcp":  # orthorhombic cell a x √3a x √(8/3)a, 4 atoms
        basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 5 / 6, 0.5], [0, 1 / 3, 0.5]])
        shape = np.array([1.0, np.sqrt(3.0), np.sqrt(8.0 / 3.0)])
    else:
        raise ValueError(f"lattice kind {kind!r}: 'fcc' or 'hcp'")
    a = (4 * (1.0 / density) / np.prod(shape)) ** (1.0 / 3.0)  # 4 atoms per cell
    pos, box = lattice_positions(basis, n_cells, a * shape)
    if noise:
        pos = pos + np.random.default_rng(seed).normal(scale=noise, size=pos.shape)
    n = len(pos)
    return Frame(positions=pos, cell=box, molecule=np.arange(n), species=np.zeros(n, np.int64))


def interface_report(
    frames: Sequence[Frame], encoder, tenwolde_cutoff: float, criterion: str = "ten_wolde"
) -> QualityReport:
    """Scores of a trained encoder (``HierarchicalEncoder``) on ``frames`` (single-atom or
    molecular), grouped by the number of molecules, against the per-molecule
    ``criterion`` (:func:`crystalline_molecules`, neighbour cutoff ``tenwolde_cutoff``;
    the freud column is freud's ten Wolde either way); plus perfect fcc/hcp lattices
    (single-atom systems only)."""
    from latentcv.cv_models.batching import encode_frames, prepare_samples

    dtype = encoder.crystal_centroid.dtype
    samples = prepare_samples(frames, encoder.atoms_per_molecule, encoder.cutoff, dtype)
    out = encode_frames(encoder, samples, torch.device("cpu"))
    n_crystal = out["n_crystal"].double().numpy()
    rows = []
    by_size: dict[int, list[int]] = {}
    for k, f in enumerate(frames):
        by_size.setdefault(f.n_molecules, []).append(k)
    for m, idx in sorted(by_size.items()):
        tw = [crystalline_molecules(frames[k], criterion, tenwolde_cutoff) for k in idx]
        fr = np.array([freud_solid(frames[k], tenwolde_cutoff).mean() for k in idx])
        solid = np.array([s.mean() for s in tw])
        agree = np.mean(np.concatenate([(out["p_molecule"][k].numpy() > 0.5) == s for k, s in zip(idx, tw)]))
        nc = n_crystal[idx]
        slope, offset = np.polyfit(solid * m, nc, 1) if np.ptp(solid) > 0 else (float("nan"), float("nan"))
        rows.append(
            SizeReport(
                m,
                len(idx),
                _spearman(nc, solid),
                _spearman(nc, fr),
                float(agree),
                float(slope),
                float(offset),
                (float(solid.min()), float(solid.max())),
            )
        )
    reading = {}
    if encoder.atoms_per_molecule == 1:
        for kind in ("fcc", "hcp"):
            lat = lattice_frame(kind, 4, noise=0.04)
            s = prepare_samples([lat], 1, encoder.cutoff, dtype)
            reading[kind] = float(encode_frames(encoder, s, torch.device("cpu"))["n_crystal"][0]) / lat.n_molecules
    return QualityReport(rows, reading)


def plot_cv_vs_solid(
    path: Path, frames: Sequence[Frame], encoder, tenwolde_cutoff: float, criterion: str = "ten_wolde"
) -> None:
    """PNG: n_crystal / M against the reference crystalline fraction (``criterion``), one
    colour per box size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latentcv.cv_models.batching import encode_frames, prepare_samples

    samples = prepare_samples(frames, encoder.atoms_per_molecule, encoder.cutoff, encoder.crystal_centroid.dtype)
    nc = encode_frames(encoder, samples, torch.device("cpu"))["n_crystal"].double().numpy()
    solid = np.array([crystalline_molecules(f, criterion, tenwolde_cutoff).mean() for f in frames])
    m = np.array([f.n_molecules for f in frames])
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for k, size in enumerate(sorted(set(m.tolist()))):
        sel = m == size
        ax.scatter(solid[sel], nc[sel] / size, s=10, color=f"C{k}", label=f"{size} molecules", alpha=0.7)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("ten Wolde solid fraction" if criterion == "ten_wolde" else "share with local P2 > 0.5")
    ax.set_ylabel("n_crystal / M (learned)")
    ax.legend(fontsize=8)
    ax.set_title("held-out frames")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
