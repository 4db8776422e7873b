"""Free energy along the nucleus size from biased runs, and what nucleation theory makes of it.

- **Weights.** Well-tempered metadynamics (Barducci, Bussi & Parrinello, PRL 100, 020603
  (2008)) deposits a bias V(s, t) that changes in time; a frame sampled at time t weighs
  exp[β(V(s(t), t) − c(t))] with c(t) of Tiwary & Parrinello (J. Phys. Chem. B 119, 736
  (2015)), computed here from the HILLS file. OPES_METAD's bias is quasi-static: a frame
  weighs exp(βV) (Invernizzi & Parrinello, J. Phys. Chem. Lett. 11, 2731 (2020)).
- **Profile.** The weighted histogram of an *independent* nucleus size n (the judge's
  largest crystalline cluster, in molecules) gives F(n) = −kT ln P(n), one profile per run,
  then the mean and standard error over runs.
- **Barrier.** n* is where F is highest between the melt's minimum and the crystal side;
  ΔG* = F(n*) − F(melt minimum).
- **Classical nucleation theory (CNT).** ΔG(n) = C − n Δμ + B n^(2/3), fitted by weighted
  least squares (linear in Δμ, B, C) up to past n*; for a sphere B = (36π)^(1/3) v^(2/3) γ
  with v the crystal's volume per molecule, so n*_CNT = (2B / 3Δμ)³, ΔG*_CNT = 4B³ / 27Δμ².
- **Rate.** J = ρ_l Z f⁺ exp(−ΔG*/kT) with the Zeldovich factor Z = √(Δμ / 6π kT n*) and
  the attachment rate f⁺ = 24 D n*^(2/3) / λ², λ = ρ_l^(−1/3) (Auer & Frenkel, Nature 409,
  1020 (2001)); D is the liquid's self-diffusion coefficient.

Energies are in the run's energy unit (PLUMED's: kJ/mol, or ε in reduced units), lengths
in the frames' unit, times in PLUMED's time unit (ps, or τ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentcv.cv_models.data.plumed_table import read_plumed_table


STRETCH_CUTOFF = 6.25  # PLUMED's DP2CUTOFF: a kernel ends where (x − c)² / 2σ² reaches it


@dataclass
class Hills:
    """A 1-D PLUMED HILLS file (WT-METAD).

    Attributes:
        time: [H] deposition times; center, sigma: [H] in the CV's unit;
        height: [H] as written (PLUMED writes well-tempered heights times γ/(γ−1));
        biasfactor: γ (inf: plain metadynamics);
        stretched: PLUMED's "stretched-gaussian" kernels (its default since 2.7: cut where
            z²/2 = 6.25 and shifted and stretched to reach 0 there with the same height).
    """

    time: np.ndarray
    center: np.ndarray
    sigma: np.ndarray
    height: np.ndarray
    biasfactor: float
    stretched: bool = True

    @classmethod
    def read(cls, path) -> "Hills":
        table = read_plumed_table(path)
        if len(table.fields) != 5:
            raise ValueError(f"{path}: a 1-D HILLS file has 5 columns (time, cv, sigma, height, biasf)")
        d = table.data
        gamma = float(d[0, 4]) if len(d) else float("inf")
        with open(path) as fh:
            stretched = any("kerneltype stretched-gaussian" in line for line in fh if line.startswith("#"))
        return cls(d[:, 0], d[:, 1], d[:, 2], d[:, 3], gamma if gamma > 1 else float("inf"), stretched)

    @property
    def bias_scale(self) -> float:
        """Deposited bias per written height: (γ−1)/γ for well-tempered hills, 1 otherwise."""
        return 1.0 if np.isinf(self.biasfactor) else (self.biasfactor - 1.0) / self.biasfactor

    def grid(self, points: int = 2001, pad: float = 5.0) -> np.ndarray:
        """[G] CV values covering every hill ± ``pad`` widths (the domain of c(t)'s integrals)."""
        lo = float(np.min(self.center - pad * self.sigma))
        hi = float(np.max(self.center + pad * self.sigma))
        return np.linspace(lo, hi, points)

    def kernels(self, grid: np.ndarray) -> np.ndarray:
        """[H, G] each hill's deposited bias on ``grid``."""
        half_z2 = 0.5 * ((grid[None, :] - self.center[:, None]) / self.sigma[:, None]) ** 2
        if not self.stretched:
            return self.bias_scale * self.height[:, None] * np.exp(-half_z2)
        tail = np.exp(-STRETCH_CUTOFF)
        shape = np.where(half_z2 < STRETCH_CUTOFF, (np.exp(-half_z2) - tail) / (1.0 - tail), 0.0)
        return self.bias_scale * self.height[:, None] * shape


def tiwary_ct(hills: Hills, times: np.ndarray, kt: float, grid: np.ndarray | None = None) -> np.ndarray:
    """[T] c(t) = kT ln[∫ e^{γβV/(γ−1)} ds / ∫ e^{βV/(γ−1)} ds] of the bias deposited up to
    each of ``times`` (Tiwary & Parrinello 2015) over ``grid`` (default :meth:`Hills.grid`);
    0 before the first hill. Equals PLUMED's ``METAD ... CALC_RCT`` (``metad.rct``, which
    counts the hill laid at t) on the same grid."""
    grid = hills.grid() if grid is None else grid
    gamma = hills.biasfactor
    if np.isinf(gamma):
        raise ValueError("c(t) needs well-tempered hills (a finite BIASFACTOR)")
    cumulative = np.cumsum(hills.kernels(grid), axis=0)  # [H, G] bias after hill k
    count = np.searchsorted(hills.time, times, side="right")
    out = np.zeros(len(times))
    for i, k in enumerate(count):
        if k == 0:
            continue
        v = cumulative[k - 1] / kt
        a, b = gamma / (gamma - 1.0) * v, v / (gamma - 1.0)
        out[i] = kt * (_logsumexp(a) - _logsumexp(b))
    return out


def filled_free_energy(hills: Hills, time: float) -> float:
    """γ/(γ−1) × the highest bias deposited before ``time`` (energy unit): the free energy
    well-tempered metadynamics had filled along its CV by then (Barducci, Bussi & Parrinello
    2008, F = −γ/(γ−1) V). At the step a run crystallises: the barrier along the biased CV,
    as a one-crossing estimate."""
    count = int(np.searchsorted(hills.time, time, side="right"))
    if count == 0:
        return 0.0
    bias = hills.kernels(hills.grid())[:count].sum(axis=0)
    return float(np.max(bias)) / hills.bias_scale


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + float(np.log(np.sum(np.exp(x - m))))


def free_energy(values: np.ndarray, log_weights: np.ndarray, edges: np.ndarray, kt: float) -> np.ndarray:
    """[B] F = −kT ln P of the weighted histogram of ``values`` over bins ``edges`` [B+1]
    (NaN where no frame fell), shifted so that its minimum is 0."""
    lw = np.asarray(log_weights, dtype=np.float64)
    w = np.exp(lw - lw.max())
    # a sum per bin, not np.histogram: its weighted path differences cumulative sums, and a
    # bin of 1e-20 weights next to one of weight 1 comes out 0
    index = np.searchsorted(edges, values, side="right") - 1
    inside = (index >= 0) & (index < len(edges) - 1)
    hist = np.bincount(index[inside], weights=w[inside], minlength=len(edges) - 1)
    with np.errstate(divide="ignore"):
        f = -kt * np.log(hist)
    f[~np.isfinite(f)] = np.nan
    return f - np.nanmin(f) if np.isfinite(f).any() else f


@dataclass
class Barrier:
    """The top of a profile between the melt's minimum and the crystal side.

    Attributes:
        melt_n: nucleus size of the melt's minimum; n_star: of the top (molecules);
        height: ΔG* = F(n*) − F(melt minimum); crossed: the profile falls again past n*
            by at least ``drop`` (else the top is the last sampled bin: not a barrier).
    """

    melt_n: float
    n_star: float
    height: float
    crossed: bool


def barrier(centers: np.ndarray, f: np.ndarray, melt_below: float, drop: float, top_below: float = np.inf) -> Barrier:
    """:class:`Barrier` of the profile ``f`` [B] at bin ``centers`` [B], over sampled bins:
    the melt minimum is the lowest bin below ``melt_below``; the top, the highest bin after
    it below ``top_below`` (past it: the crystal side)."""
    ok = np.isfinite(f)
    melt = np.flatnonzero(ok & (centers < melt_below))
    if melt.size == 0:
        raise ValueError(f"no frame with a nucleus smaller than {melt_below:g}: is the first frame a melt?")
    i0 = melt[np.argmin(f[melt])]
    after = np.flatnonzero(ok & (np.arange(len(f)) > i0) & (centers < top_below))
    if after.size == 0:
        return Barrier(float(centers[i0]), float(centers[i0]), 0.0, False)
    top = after[np.argmax(f[after])]
    beyond = np.flatnonzero(ok & (np.arange(len(f)) > top))
    crossed = bool(beyond.size and f[top] - np.min(f[beyond]) >= drop)
    return Barrier(float(centers[i0]), float(centers[top]), float(f[top] - f[i0]), crossed)


@dataclass
class CntFit:
    """ΔG(n) = C − n Δμ + B n^(2/3), and what it implies.

    Attributes:
        dmu: Δμ per molecule (energy unit); b: the surface term B (energy unit); c: offset;
        n_star: (2B / 3Δμ)³; dg_star: 4B³ / 27Δμ² (energy unit); points: bins fitted.
    """

    dmu: float
    b: float
    c: float
    n_star: float
    dg_star: float
    points: int

    def __call__(self, n: np.ndarray) -> np.ndarray:
        return self.c - n * self.dmu + self.b * np.cbrt(n) ** 2

    def surface_tension(self, volume_per_molecule: float) -> float:
        """γ = B / ((36π)^(1/3) v^(2/3)) for a spherical nucleus (energy / length²)."""
        return self.b / ((36.0 * np.pi) ** (1.0 / 3.0) * volume_per_molecule ** (2.0 / 3.0))


def fit_cnt(centers: np.ndarray, f: np.ndarray, error: np.ndarray, lo: float, hi: float) -> CntFit:
    """Weighted least squares of :class:`CntFit` to the sampled bins with lo ≤ n ≤ hi
    (weights 1/error², errors floored at their median)."""
    ok = np.isfinite(f) & (centers >= lo) & (centers <= hi)
    if ok.sum() < 4:
        raise ValueError(f"only {int(ok.sum())} sampled bins between n = {lo:g} and {hi:g}: too few for a CNT fit")
    n, y = centers[ok], f[ok]
    err = np.where(np.isfinite(error[ok]) & (error[ok] > 0), error[ok], np.nan)
    floor = np.nanmedian(err) if np.isfinite(err).any() else 1.0
    w = 1.0 / np.fmax(np.nan_to_num(err, nan=floor), floor)
    design = np.stack([np.ones_like(n), -n, np.cbrt(n) ** 2], axis=1)
    (c, dmu, b), *_ = np.linalg.lstsq(design * w[:, None], y * w, rcond=None)
    if dmu > 0 and b > 0:
        n_star, dg_star = (2 * b / (3 * dmu)) ** 3, 4 * b**3 / (27 * dmu**2)
    else:  # no maximum: the data are not CNT-shaped over this range
        n_star = dg_star = float("nan")
    return CntFit(float(dmu), float(b), float(c), float(n_star), float(dg_star), int(ok.sum()))


def cnt_rate(dg_star: float, dmu: float, n_star: float, diffusion: float, liquid_density: float, kt: float) -> float:
    """J = ρ_l Z f⁺ exp(−ΔG*/kT) (nuclei per volume per time, in the inputs' units):
    Z = √(Δμ / 6π kT n*), f⁺ = 24 D n*^(2/3) / λ², λ = ρ_l^(−1/3)."""
    if not all(np.isfinite(x) and x > 0 for x in (dg_star, dmu, n_star, diffusion, liquid_density, kt)):
        return float("nan")
    zeldovich = np.sqrt(dmu / (6 * np.pi * kt * n_star))
    attach = 24.0 * diffusion * n_star ** (2.0 / 3.0) * liquid_density ** (2.0 / 3.0)
    return float(liquid_density * zeldovich * attach * np.exp(-dg_star / kt))


def self_diffusion(positions: np.ndarray, cells: np.ndarray, dt: float) -> float:
    """Self-diffusion coefficient D = MSD / 6t (length²/time) of frames ``positions``
    [T, N, 3] (wrapped) in cells [T, 3, 3] (rows: lattice vectors) ``dt`` apart: unwrapped by
    the minimum image between consecutive frames (a particle moves < half a box per
    ``dt``), MSD fitted through the origin over every lag up to half the frames."""
    if len(positions) < 3:
        raise ValueError("the diffusion coefficient needs at least 3 frames")
    steps = []
    for k in range(1, len(positions)):
        inv = np.linalg.inv(cells[k])
        d = (positions[k] - positions[k - 1]) @ inv
        steps.append((d - np.round(d)) @ cells[k])
    path = np.concatenate([np.zeros_like(positions[:1]), np.cumsum(steps, axis=0)])
    lags = np.arange(1, max(2, len(path) // 2) + 1)
    msd = np.array([np.mean(np.sum((path[lag:] - path[:-lag]) ** 2, axis=-1)) for lag in lags])
    t = lags * dt
    return float(np.sum(msd * t) / np.sum(t * t) / 6.0)
