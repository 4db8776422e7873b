"""``latentcv fes``: the free energy along the nucleus size, n*, ΔG*, a CNT fit and the
rate, from the biased runs of ``latentcv compare``.

Reads the finished runs of one CV in a compare folder (``runs/<cv>-seed<k>`` or
``runs/<cv>-opes-seed<k>``: COLVAR, HILLS, the judged dump), measures the nucleus size of
every dump frame with the system's independent judge (the largest crystalline cluster:
freud's ten Wolde solid bonds for LJ and the dimers, CHILL+ ice or local P2 molecules
joined within the judge's cutoff otherwise), reweights the frames (WT-METAD: c(t); OPES:
its bias) and writes ``<out>/fes.md``, ``fes.json`` and ``fes.png``
(:mod:`~latentcv.cv_models.analysis.fes` has the formulas and their sources).

    latentcv fes compare_out --cv latent
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from latentcv.cv_models.analysis import fes
from latentcv.cv_models.atomic_write import write_atomically
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.system_file import MetadSystem
from latentcv.cv_models.units import LAMMPS_UNIT_STYLES
from latentcv.export.plumed_input import KB_KJ_PER_MOL_K

# Melting point and enthalpy of melting per molecule (run units), for Δμ ≈ Δh_m (T_m − T) / T_m
MELTING = {
    "lj": (0.705, 1.082, "measured at P* = 1, docs/results.md 'LJ melting point and enthalpy of melting'"),
    "mw": (274.6, 5.3, "Molinero & Moore, J. Phys. Chem. B 113, 4008 (2009)"),
}


@dataclass
class RunSample:
    """One biased run, frame by frame. n: [T] nucleus size (molecules); log_weight: [T]."""

    name: str
    n: np.ndarray
    log_weight: np.ndarray
    crystallised_at: int | None
    volume_per_molecule: float  # of the last frame (the crystal, in a crystallised run)
    time_per_step: float  # PLUMED's time unit per MD step
    filled_kt: float = math.nan  # WT-METAD, kT: γ/(γ−1) × the highest bias when it crystallised (or at its end)


@dataclass
class NucleationReport:
    """What ``latentcv fes`` writes to fes.json (energies in the runs' unit and in kT)."""

    system: str
    cv: str
    method: str
    kt: float
    energy_unit: str
    runs: list[str]
    bin_width: float
    centers: list[float]
    f_mean_kt: list[float]
    f_sem_kt: list[float]
    per_run: list[dict] = field(default_factory=list)
    n_star: float = math.nan
    dg_star_kt: float = math.nan
    cnt: dict = field(default_factory=dict)
    rate: dict = field(default_factory=dict)


def energy_scale(target: MetadSystem, temp: float) -> tuple[float, str]:
    """kT in PLUMED's energy unit of the runs (reduced: T; else kJ/mol) and that unit's name."""
    if not LAMMPS_UNIT_STYLES[target.units].nm:
        return temp, "ε"
    return KB_KJ_PER_MOL_K * temp, "kJ/mol"


def largest_cluster_sizes(dump: Path, target: MetadSystem, cutoff: float) -> tuple[np.ndarray, np.ndarray, list]:
    """Steps [T], largest crystalline cluster [T] (molecules) of every frame of ``dump`` by
    the system's judge (clusters joined within ``target.cluster_link``), and the frames."""
    from latentcv.cv_models.analysis.crystallinity import largest_crystalline_cluster
    from latentcv.cv_models.data import read_lammps_dump

    frames = read_lammps_dump(dump, units=target.units)
    sizes = np.array(
        [largest_crystalline_cluster(f, target.criterion, cutoff, target.cluster_link) for f in frames],
        dtype=np.float64,
    )
    return np.array([f.timestep for f in frames]), sizes, frames


def _print_stride(plumed: Path) -> int:
    match = re.search(r"^PRINT .*STRIDE=(\d+)", plumed.read_text(), re.MULTILINE)
    if not match:
        raise ValueError(f"{plumed}: no PRINT ... STRIDE= line")
    return int(match.group(1))


def run_sample(folder: Path, target: MetadSystem, cutoff: float, kt: float) -> RunSample:
    """Nucleus size and reweighting log-weight of every judged frame of one run."""
    colvar = read_plumed_table(folder / "COLVAR")
    time, bias = colvar.column("time"), colvar.column("metad.bias")
    opes = "OPES_METAD" in (folder / "plumed.dat").read_text()
    per_step = (time[1] - time[0]) / _print_stride(folder / "plumed.dat")  # time per MD step
    result = json.loads((folder / "result.json").read_text())
    filled = math.nan
    if opes:
        log_w = bias / kt
    else:
        hills = fes.Hills.read(folder / "HILLS")
        log_w = (bias - fes.tiwary_ct(hills, time, kt)) / kt
        crystallised_at = result.get("crystallised_at")
        until = crystallised_at * per_step if crystallised_at is not None else float(time[-1])
        filled = fes.filled_free_energy(hills, until) / kt
    row_of_step = {int(round(t / per_step)): k for k, t in enumerate(time)}  # the last row wins (restarts)
    steps, sizes, frames = largest_cluster_sizes(folder / "traj.dump", target, cutoff)
    rows = np.array([row_of_step.get(int(s), -1) for s in steps])
    keep = rows >= 0
    last = frames[-1]
    volume = abs(float(np.linalg.det(last.cell))) / (int(last.molecule.max()) + 1)
    return RunSample(
        folder.name, sizes[keep], log_w[rows[keep]], result.get("crystallised_at"), volume, per_step, filled
    )


def run_config(run: Path):
    """The :class:`CompareConfig` a finished ``latentcv compare`` run was made with (the
    settings key of its ``result.json``)."""
    from latentcv.cv_models.app.compare import CompareConfig

    key = json.loads((run / "result.json").read_text())["key"]
    return CompareConfig(**{k: v for k, v in key.items() if k in CompareConfig.__dataclass_fields__})


def run_folders(folder: Path, cv: str, method: str) -> list[Path]:
    """The finished runs of ``cv`` (``method``: metad or opes) in a compare folder."""
    pattern = f"{cv}-seed*" if method == "metad" else f"{cv}-{method}-seed*"
    runs = sorted(p for p in (folder / "runs").glob(pattern) if (p / "result.json").exists())
    if not runs:
        raise FileNotFoundError(f"no finished run {folder}/runs/{pattern}/result.json: run `latentcv compare` first")
    return runs


def melt_limit(samples: list[RunSample], bin_width: float) -> float:
    """Nucleus sizes below this are the melt: 1.5 × the 95th percentile of the first
    10 frames of every run (the bias is still small), at least two bins."""
    early = np.concatenate([s.n[:10] for s in samples])
    return max(1.5 * float(np.percentile(early, 95)), 2 * bin_width)


def profiles(samples: list[RunSample], edges: np.ndarray, melt_below: float) -> np.ndarray:
    """[R, B] F(n) / kT of every run, 0 at its melt minimum (NaN: no frame in the bin)."""
    centers = 0.5 * (edges[1:] + edges[:-1])
    out = []
    for s in samples:
        f = fes.free_energy(s.n, s.log_weight, edges, 1.0)
        melt = np.isfinite(f) & (centers < melt_below)
        out.append(f - (np.nanmin(f[melt]) if melt.any() else 0.0))
    return np.array(out)


def mean_profile(per_run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B] mean and standard error over runs of bins sampled by at least half of them."""
    count = np.isfinite(per_run).sum(axis=0)
    enough = count >= max(2, (len(per_run) + 1) // 2) if len(per_run) > 1 else count >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty bins: NaN
        mean = np.where(enough, np.nanmean(per_run, axis=0), np.nan)
        sem = np.where(enough & (count > 1), np.nanstd(per_run, axis=0, ddof=1) / np.sqrt(np.fmax(count, 1)), np.nan)
    return mean, sem


def liquid_properties(folder: Path, target: MetadSystem, time_per_step: float) -> tuple[float, float]:
    """(D, ρ_l): self-diffusion coefficient and number density of the unbiased melt of
    ``folder/calibration/traj.dump`` (compare's calibration run); NaN without it."""
    from latentcv.cv_models.data import read_lammps_dump
    from latentcv.cv_models.data.molecules import frame_centers

    dump = folder / "calibration" / "traj.dump"
    frames = read_lammps_dump(dump, units=target.units) if dump.exists() else []
    if len(frames) < 3:
        return math.nan, math.nan
    centres = np.array([frame_centers(f) for f in frames])
    cells = np.array([f.cell for f in frames])
    dt = (frames[1].timestep - frames[0].timestep) * time_per_step
    density = float(np.mean([len(c) / abs(np.linalg.det(m)) for c, m in zip(centres, cells)]))
    return fes.self_diffusion(centres, cells, dt), density


def nucleation_report(folder: Path, cv: str = "latent", method: str = "metad", bin_width: float = 0.0) -> tuple:
    """The :class:`NucleationReport` of one CV's runs in a compare folder, with the
    per-run profiles [R, B] for the plot."""
    runs = run_folders(folder, cv, method)
    cfg = run_config(runs[0])
    target = cfg.target
    kt, unit = energy_scale(target, cfg.temp)
    samples = [run_sample(r, target, cfg.q6_cutoff, kt) for r in runs]
    top = max(float(s.n.max()) for s in samples)
    width = bin_width or max(1.0, round(top / 80))
    edges = np.arange(-0.5, top + width, width)
    centers = 0.5 * (edges[1:] + edges[:-1])
    melt_below = melt_limit(samples, width)
    per_run = profiles(samples, edges, melt_below)
    half_box = 0.5 * target.n_molecules  # a nucleus of half the box is past the top
    mean, sem = mean_profile(per_run)
    rep = NucleationReport(
        cfg.system,
        cv,
        method,
        kt,
        unit,
        [s.name for s in samples],
        width,
        centers.tolist(),
        mean.tolist(),
        sem.tolist(),
    )
    for s, f in zip(samples, per_run):
        b = fes.barrier(centers, f, melt_below, drop=2.0, top_below=half_box)
        rep.per_run.append(
            {
                "run": s.name,
                "crystallised_at": s.crystallised_at,
                "n_star": b.n_star,
                "dg_star_kt": b.height,
                "crossed": b.crossed,
                "frames": int(len(s.n)),
                "filled_kt": s.filled_kt,
            }
        )
    if not any(s.crystallised_at is not None for s in samples):
        rep.n_star = rep.dg_star_kt = math.nan  # the profile ends where the bias stopped: no top was crossed
        rep.cnt = {"error": NOT_CROSSED}
        return rep, per_run
    top_mean = fes.barrier(centers, mean, melt_below, drop=2.0, top_below=half_box)
    rep.n_star, rep.dg_star_kt = top_mean.n_star, top_mean.height
    _add_cnt_and_rate(rep, folder, target, samples, centers, mean, sem, top_mean, melt_below)
    return rep, per_run


NOT_CROSSED = (
    "no run crystallised, so no run crossed the barrier: the top of F(n) is where the bias stopped, "
    "not n* and ΔG*, and no CNT fit or rate is made from it"
)


def _add_cnt_and_rate(rep, folder, target, samples, centers, mean, sem, top, melt_below) -> None:
    """The CNT fit over the melt limit to 1.5 n* and the rate it implies (in place)."""
    try:
        fit = fes.fit_cnt(centers, mean, sem, lo=melt_below, hi=max(1.5 * top.n_star, melt_below + 4 * rep.bin_width))
    except ValueError as exc:
        rep.cnt = {"error": str(exc)}
        return
    crystal = [s.volume_per_molecule for s in samples if s.crystallised_at is not None]
    diffusion, rho_l = liquid_properties(folder, target, samples[0].time_per_step)
    volume = float(np.median(crystal)) if crystal else (1.0 / rho_l if rho_l > 0 else math.nan)
    rep.cnt = {
        "dmu_kt": fit.dmu,
        "c_kt": fit.c,
        "b_kt": fit.b,
        "n_star": fit.n_star,
        "dg_star_kt": fit.dg_star,
        "points": fit.points,
        "fit_from": melt_below,
        "volume_per_molecule": volume,
        "volume_from": "crystallised runs' last frames" if crystal else "the melt (no run crystallised)",
        "gamma": fit.surface_tension(volume) * rep.kt if np.isfinite(volume) else math.nan,
    }
    if target.name in MELTING:
        tm, dhm, source = MELTING[target.name]
        rep.cnt["dmu_reference_kt"] = dhm * (tm - _temperature(rep, target)) / tm / rep.kt
        rep.cnt["dmu_reference_source"] = (
            f"Δh_m (T_m − T)/T_m, T_m = {tm:g}, Δh_m = {dhm:g} {rep.energy_unit} ({source})"
        )
    dmu = fit.dmu * rep.kt
    rate = fes.cnt_rate(rep.dg_star_kt * rep.kt, dmu, rep.n_star, diffusion, rho_l, rep.kt)
    rep.rate = {
        "diffusion": diffusion,
        "liquid_density": rho_l,
        "log10_rate": math.log10(rate) if rate > 0 else math.nan,
    }
    if LAMMPS_UNIT_STYLES[target.units].nm:  # Å or nm and ps: per m³ per s
        style = LAMMPS_UNIT_STYLES[target.units]
        per_m3_s = rate / (style.nm * 1e-9) ** 3 / 1e-12
        rep.rate["log10_rate_si"] = math.log10(per_m3_s) if per_m3_s > 0 else math.nan


def _temperature(rep: NucleationReport, target: MetadSystem) -> float:
    return rep.kt / KB_KJ_PER_MOL_K if LAMMPS_UNIT_STYLES[target.units].nm else rep.kt


CAVEATS = """\
- **One crossing per run.** Each run stops once the box has crystallised, so the barrier
  region is crossed once and sampled by a few frames; the crystal side is not equilibrated
  against the melt and its values mean nothing. F(n) up to n* is a filling estimate, its
  error the spread over runs.
- **The biased CV is not the nucleus size.** Slow motions the CV misses (the nucleus's
  shape and structure, several embryos at once) make the barrier along n come out high.
- **Finite box.** F(n_max) is the free energy of the *largest* cluster of a box of N
  molecules: at small n it is set by how many embryos the box holds (the melt's minimum sits
  above 0), and the depletion of the liquid around a large nucleus shifts n* and ΔG*.
- **CNT.** A spherical nucleus with a sharp interface and the bulk Δμ; the kinetic
  prefactor uses f⁺ = 24 D n*^(2/3) / λ² (Auer & Frenkel 2001), which is known to be off by
  up to two orders of magnitude (ten Wolde, Ruiz-Montero & Frenkel 1996).
"""


def markdown(rep: NucleationReport) -> str:
    """fes.md: the barrier per run and over runs, the CNT fit and the rate, and the caveats."""
    kt = f"kT = {rep.kt:.4g} {rep.energy_unit}"
    lines = [
        f"# Nucleation from the biased runs: {rep.system}, CV `{rep.cv}` ({rep.method}), {kt}",
        "",
        f"Nucleus size n: the judge's largest crystalline cluster (molecules), bins of {rep.bin_width:g}. "
        "n* and ΔG*: the top of F(n) between the melt's minimum and half the box. Filled: the free "
        "energy WT-METAD had filled along its CV when the run crystallised (a run that never did: by its end), "
        "γ/(γ−1) × the highest bias.",
        "",
        "| run | crystallised at step | frames | n* | ΔG* (kT) | F falls ≥ 2 kT past n* | filled (kT) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rep.per_run:
        lines.append(_run_row(r))
    dg = np.array([r["dg_star_kt"] for r in rep.per_run if r["crystallised_at"] is not None])
    ns = np.array([r["n_star"] for r in rep.per_run if r["crystallised_at"] is not None])
    filled = np.array([r["filled_kt"] for r in rep.per_run if r["crystallised_at"] is not None])
    if dg.size:
        lines.append(
            f"| **median of {dg.size} crystallised** | | | **{np.median(ns):.0f}** ({ns.min():.0f}–{ns.max():.0f}) | "
            f"**{np.median(dg):.1f}** ({dg.min():.1f}–{dg.max():.1f}) | | **{np.median(filled):.1f}** |"
        )
    if any(r["crystallised_at"] is None for r in rep.per_run):
        lines += [
            "",
            "In parentheses: a run that never crystallised; its top is where its sampling ended, not a barrier, "
            "and its filled free energy was not enough to cross.",
        ]
    if math.isfinite(rep.n_star):
        lines += ["", f"Mean profile over runs: n* = {rep.n_star:.0f}, ΔG* = {rep.dg_star_kt:.1f} kT.", ""]
    else:
        lines += [""]
    lines += _cnt_lines(rep) + ["", "Caveats:", "", CAVEATS]
    return "\n".join(lines)


def _run_row(r: dict) -> str:
    """One run's row of fes.md; n*, ΔG* and the filled free energy of a run that never
    crystallised in parentheses (where its sampling ended, not a barrier)."""
    n_star, dg, filled = f"{r['n_star']:.0f}", f"{r['dg_star_kt']:.1f}", f"{r['filled_kt']:.1f}"
    if r["crystallised_at"] is None:
        n_star, dg, filled = f"({n_star})", f"({dg})", f"({filled})"
    when = r["crystallised_at"] if r["crystallised_at"] is not None else "never"
    return f"| {r['run']} | {when} | {r['frames']} | {n_star} | {dg} | {'yes' if r['crossed'] else 'no'} | {filled} |"


def _cnt_lines(rep: NucleationReport) -> list[str]:
    c = rep.cnt
    if "error" in c:
        return [f"CNT fit: not made ({c['error']})."]
    out = [
        f"CNT fit ΔG(n) = C − nΔμ + Bn^(2/3) to the mean profile from n = {c['fit_from']:.0f} to 1.5 n* "
        f"({c['points']} bins): Δμ = {c['dmu_kt']:.3f} kT, B = {c['b_kt']:.2f} kT, "
        f"n*_CNT = {c['n_star']:.0f}, ΔG*_CNT = {c['dg_star_kt']:.1f} kT; γ = {c['gamma']:.3g} {rep.energy_unit} "
        f"per length² (volume per molecule {c['volume_per_molecule']:.4g}, from {c['volume_from']})."
    ]
    if "dmu_reference_kt" in c:
        out.append(f"Δμ from the melting enthalpy: {c['dmu_reference_kt']:.3f} kT ({c['dmu_reference_source']}).")
    r = rep.rate
    if r:
        si = f"; log10 J = {r['log10_rate_si']:.1f} per m³ per s" if "log10_rate_si" in r else ""
        out.append(
            f"Rate J = ρ_l Z f⁺ exp(−ΔG*/kT) with the profile's n* and ΔG* and the fitted Δμ: log10 J = "
            f"{r['log10_rate']:.1f} per length³ per time unit{si} (liquid: D = {r['diffusion']:.3g}, "
            f"ρ_l = {r['liquid_density']:.4g}, from compare's unbiased calibration run)."
        )
    return out


def plot(rep: NucleationReport, per_run: np.ndarray, path: Path) -> None:
    """fes.png: F(n) of every run, the mean ± standard error, the CNT fit and n*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array(rep.centers)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, f in zip(rep.runs, per_run):
        ax.plot(n, f, ".-", lw=0.6, ms=3, alpha=0.5, label=name)
    mean, sem = np.array(rep.f_mean_kt), np.array(rep.f_sem_kt)
    ax.fill_between(n, mean - sem, mean + sem, color="k", alpha=0.15)
    ax.plot(n, mean, "k-", lw=2, label="mean over runs")
    c = rep.cnt
    if "b_kt" in c:
        fit = fes.CntFit(c["dmu_kt"], c["b_kt"], c["c_kt"], c["n_star"], c["dg_star_kt"], c["points"])
        ax.plot(n, fit(n), "r--", label="CNT fit")
    if math.isfinite(rep.n_star):
        ax.axvline(rep.n_star, color="grey", ls=":", label=f"n* = {rep.n_star:.0f}")
    ax.set(
        xlabel="largest crystalline cluster n (molecules)",
        ylabel="F(n) / kT",
        title=f"{rep.system}: {rep.cv} ({rep.method})",
    )
    ax.set_ylim(-2, max(5.0, np.nanmax(per_run[np.isfinite(per_run)]) + 5) if np.isfinite(per_run).any() else 10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    folder: Path, cv: str = "latent", method: str = "metad", bin_width: float = 0.0, out: Path | None = None
) -> str:
    """Write fes.md, fes.json and fes.png into ``out`` (default ``folder/fes-<cv>[-opes]``); returns fes.md."""
    rep, per_run = nucleation_report(folder, cv, method, bin_width)
    out = out or folder / (f"fes-{cv}" if method == "metad" else f"fes-{cv}-{method}")
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(rep)
    write_atomically(out / "fes.md", text.encode(), "nucleation report")
    write_atomically(out / "fes.json", json.dumps(asdict(rep), indent=1).encode(), "nucleation report")
    plot(rep, per_run, out / "fes.png")
    return text
