"""Centre–centre radial distribution function g(r) and the neighbour cutoff it suggests.

The molecule-centre graph of the model (``[model] cutoff`` = D_t and ``r_on``) and the ten
Wolde analysis both decide which molecule centres are neighbours. A cutoff at the first
minimum of the crystal's centre–centre g(r), after its first peak, puts the first
neighbour shell inside and the second outside (for LJ fcc between the shells at 1.09 σ
and 1.54 σ; about 1.5 σ near melting, where the shells broaden). ``latentcv
suggest-cutoff TRAJ`` prints that minimum as ``cutoff`` and ``r_on = 0.8 × cutoff``.

Pairs are counted over every periodic image (:func:`latentcv.cv_models.data.pbc.neighbour_pairs`),
so ``r_max`` may exceed half the box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.data.molecules import frame_centers
from latentcv.cv_models.data.pbc import neighbour_pairs

__all__ = [
    "RadialDistribution",
    "CutoffSuggestion",
    "radial_distribution",
    "centre_rdf",
    "first_minimum",
    "suggest_cutoff",
    "suggest_cutoff_points",
    "plot_rdf",
]

R_ON_FRACTION = 0.8  # r_on = 0.8 x cutoff: the switch falls over the outer fifth of the cutoff
MIN_EXPECTED_PAIRS = 20  # g(r) is not estimated (0) where an ideal gas gives fewer pairs than this
MIN_PEAK = 1.5  # a first peak of g(r) lower than this is no neighbour shell (dense liquids: 2.5-3)


@dataclass
class RadialDistribution:
    """g(r) of points (molecule centres) averaged over frames.

    Attributes:
        r: [B] bin centres; g: [B] g(r) (1 for an ideal gas).
        n_frames: frames averaged; n_points: points (molecule centres) per frame (first frame).
        length_unit: unit of ``r``.
    """

    r: np.ndarray
    g: np.ndarray
    n_frames: int
    n_points: int
    length_unit: str = ""


def radial_distribution(
    configurations: Sequence[Tuple[np.ndarray, np.ndarray]],
    r_max: Optional[float] = None,
    bin_width: Optional[float] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """g(r) of periodic point sets, averaged over configurations.

    Args:
        configurations: (points [N, 3], cell [3, 3] rows a, b, c) pairs.
        r_max: largest distance (default 2.5 mean spacings (V/N)^(1/3) of the first set).
        bin_width: histogram bin (default 1/50 of the mean spacing).
    Returns:
        (r [B] bin centres, g [B]); g is 0 in bins where an ideal gas would put fewer than
        ``MIN_EXPECTED_PAIRS`` pairs (the small-r end: too few counts to estimate it).
    """
    if not configurations:
        raise ValueError("no frames to compute g(r) from")
    pts0, cell0 = configurations[0]
    spacing = (abs(np.linalg.det(cell0)) / max(len(pts0), 1)) ** (1.0 / 3.0)
    r_max = 2.5 * spacing if r_max is None else float(r_max)
    bin_width = spacing / 50.0 if bin_width is None else float(bin_width)
    if not (r_max > 0 and bin_width > 0):
        raise ValueError("r_max and bin_width must be > 0")
    edges = np.arange(0.0, r_max + 0.5 * bin_width, bin_width)
    counts = np.zeros(len(edges) - 1)
    ideal = np.zeros(len(edges) - 1)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    for pts, cell in configurations:
        n = len(pts)
        _, _, d = neighbour_pairs(pts, cell, edges[-1])
        counts += np.histogram(np.linalg.norm(d, axis=1), bins=edges)[0]
        ideal += n * (n / abs(np.linalg.det(cell))) * shell
    g = np.where(ideal >= MIN_EXPECTED_PAIRS, counts / np.maximum(ideal, 1e-300), 0.0)
    return 0.5 * (edges[1:] + edges[:-1]), g


def centre_rdf(
    frames: Sequence[Frame], r_max: Optional[float] = None, bin_width: Optional[float] = None, max_frames: int = 20
) -> RadialDistribution:
    """Molecule-centre g(r) of frames (centres of whole molecules; atoms for 1 atom per
    molecule), over at most ``max_frames`` frames spread evenly over the list."""
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to compute g(r) from")
    if len(frames) > max_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    configs = [(frame_centers(f), np.asarray(f.cell, dtype=np.float64)) for f in frames]
    r, g = radial_distribution(configs, r_max, bin_width)
    return RadialDistribution(r, g, len(frames), len(configs[0][0]), frames[0].length_unit)


def _smooth(g: np.ndarray, sigma_bins: float) -> np.ndarray:
    if sigma_bins <= 0:
        return g.copy()
    half = int(np.ceil(4 * sigma_bins))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_bins) ** 2)
    padded = np.concatenate([np.zeros(half), g, np.full(half, g[-1])])
    return np.convolve(padded, k / k.sum(), mode="valid")


def first_minimum(r: np.ndarray, g: np.ndarray, smooth_bins: float = 1.5) -> Tuple[float, float]:
    """(first peak, first minimum after it) of g(r), on a Gaussian-smoothed copy.

    The first peak is the highest point (the first shell in dense liquids and crystals);
    the minimum is the first place after it where g starts to rise again; where g is flat
    at its minimum (the empty gap between the shells of a cold crystal) the middle of the
    flat part is taken.

    Raises:
        ValueError: g has no peak above ``MIN_PEAK`` (no structure: a gas, or molecules
            read wrongly), or does not rise again before ``r[-1]`` (use a larger r_max).
    """
    gs = _smooth(np.asarray(g, dtype=np.float64), smooth_bins)
    peak = int(np.argmax(gs))
    if gs[peak] < MIN_PEAK:
        raise ValueError(
            f"g(r) has no neighbour shell (its highest value is {gs[peak]:.3g} < {MIN_PEAK:g}): give "
            "frames of a crystal (or dense liquid), with the molecules right (--data-file / "
            "--atoms-per-molecule)"
        )
    tol = 1e-3 * gs[peak]
    k = next((i for i in range(peak + 1, len(gs) - 1) if gs[i + 1] > gs[i] + tol), None)
    if k is None:
        raise ValueError(
            f"g(r) has no minimum after its first peak (at r = {r[peak]:.4g}) below r_max = "
            f"{r[-1]:.4g}: compute it to a larger r_max (--r-max)"
        )
    lo, hi = k, k
    while lo - 1 > peak and gs[lo - 1] <= gs[k] + tol:
        lo -= 1
    while hi + 1 < len(gs) and gs[hi + 1] <= gs[k] + tol:
        hi += 1
    return float(r[peak]), float(0.5 * (r[lo] + r[hi]))


@dataclass
class CutoffSuggestion:
    """What ``latentcv suggest-cutoff`` prints.

    Attributes:
        cutoff: ``[model] cutoff`` (D_t) = first minimum of the centre–centre g(r); also
            the ten Wolde neighbour cutoff.
        r_on: ``[model] r_on`` = ``R_ON_FRACTION`` × cutoff.
        first_peak: position of the first peak of g(r).
        rdf: the g(r) it came from.
    """

    cutoff: float
    r_on: float
    first_peak: float
    rdf: RadialDistribution

    def report(self) -> str:
        """TOML lines to paste into a training config, with the ten Wolde cutoff."""
        u = self.rdf.length_unit
        unit = f" {u}" if u else ""
        return "\n".join(
            [
                f"# centre-centre g(r) of {self.rdf.n_points} molecule centres over {self.rdf.n_frames} frame(s)"
                + (f" (length unit: {u})" if u else "")
                + ":",
                f"# first peak at {self.first_peak:.4g}{unit}, first minimum after it at {self.cutoff:.4g}{unit}",
                "[model]",
                f"cutoff = {self.cutoff:.4g}  # D_t: first minimum of g(r), the first neighbour shell inside",
                f"r_on = {self.r_on:.4g}  # {R_ON_FRACTION:g} x cutoff: where the switch starts to fall",
                f'# ten Wolde analysis: TenWoldeConfig(cutoff={self.cutoff:.4g}) (or cutoff="auto")',
            ]
        )


def suggest_cutoff(
    frames: Sequence[Frame], r_max: Optional[float] = None, bin_width: Optional[float] = None, max_frames: int = 20
) -> CutoffSuggestion:
    """``cutoff`` / ``r_on`` for the molecule-centre graph from the centre–centre g(r) of
    ``frames`` (give crystal frames: their first minimum is the sharpest)."""
    rdf = centre_rdf(frames, r_max, bin_width, max_frames)
    peak, minimum = first_minimum(rdf.r, rdf.g)
    return CutoffSuggestion(minimum, R_ON_FRACTION * minimum, peak, rdf)


def suggest_cutoff_points(points: np.ndarray, cell: np.ndarray) -> float:
    """First minimum of the g(r) of one periodic point set (the ten Wolde ``cutoff="auto"``)."""
    r, g = radial_distribution([(np.asarray(points, dtype=np.float64), np.asarray(cell, dtype=np.float64))])
    return first_minimum(r, g)[1]


def plot_rdf(path: str, suggestion: CutoffSuggestion) -> None:
    """PNG of g(r) with the suggested cutoff and r_on marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(suggestion.rdf.r, suggestion.rdf.g, "k-", lw=1)
    ax.axvline(suggestion.cutoff, color="tab:red", label=f"cutoff {suggestion.cutoff:.4g}")
    ax.axvline(suggestion.r_on, color="tab:blue", ls="--", label=f"r_on {suggestion.r_on:.4g}")
    ax.set_xlabel(f"r ({suggestion.rdf.length_unit})" if suggestion.rdf.length_unit else "r")
    ax.set_ylabel("g(r), molecule centres")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
