"""The table and the plot of ``latentcv compare`` (:mod:`.compare`) from its runs' results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from latentcv.cv_models.app.compare import CompareConfig


@dataclass
class CvSummary:
    """One CV over its seeds: how many runs crystallised, and medians over the runs."""

    cv: str
    runs: int
    crystallised: int
    median_steps: float  # inf when fewer than half crystallised
    median_wall_s: float
    ms_per_step: float
    max_fraction: float  # median over the runs with judged frames of the largest crystalline share (nan: none)
    structure: dict[str, float] = field(default_factory=dict)
    blew_up: int = 0  # runs LAMMPS stopped because their atoms flew apart (not crystallised)


def median_censored(values: list[float | None]) -> float:
    """Median with never-crystallised runs counted as +inf (so it is finite only when
    at least half the runs crystallised)."""
    x = sorted(math.inf if v is None else float(v) for v in values)
    if not x:
        return math.inf
    k = len(x)
    return x[k // 2] if k % 2 else 0.5 * (x[k // 2 - 1] + x[k // 2])


def summarise(results: list[dict], cvs: tuple[str, ...]) -> list[CvSummary]:
    """One :class:`CvSummary` per CV of ``cvs`` that has runs (``results``: run_one's dicts)."""
    out = []
    for cv in cvs:
        rs = [r for r in results if r["cv"] == cv]
        if not rs:
            continue
        cryst = [r for r in rs if r["crystallised_at"] is not None]
        structs = [r["structure"] for r in cryst if r.get("structure")]
        mean_struct = {k: float(np.mean([s[k] for s in structs])) for k in structs[0]} if structs else {}
        out.append(
            CvSummary(
                cv,
                len(rs),
                len(cryst),
                median_censored([r["crystallised_at"] for r in rs]),
                median_censored([r["wall_s_to_crystal"] for r in rs]),
                float(np.nanmedian([r["ms_per_step"] for r in rs])),
                _median_largest_share(rs),
                mean_struct,
                sum(1 for r in rs if r.get("blew_up")),
            )
        )
    return out


def _median_largest_share(runs: list[dict]) -> float:
    """Median over the runs of the largest judged crystalline share; runs recorded without
    judged frames (blown up before the first check) do not count; nan when none has any."""
    largest = [max(r["solid_fraction"]) for r in runs if r["solid_fraction"]]
    return float(np.median(largest)) if largest else math.nan


def structure_words(structure: dict[str, float]) -> str:
    """OVITO's fractions in words: PTM's "fcc 40 / hcp 20 / bcc 0 / ico 0 / other 40", or the
    diamond identification's cubic and hexagonal ice (core, and core + neighbour shells)."""
    if not structure:
        return "–"
    if "cubic" in structure:
        cubic = sum(v for k, v in structure.items() if k.startswith("cubic"))
        hexagonal = sum(v for k, v in structure.items() if k.startswith("hexagonal"))
        return (
            f"cubic ice {100 * structure['cubic']:.0f} ({100 * cubic:.0f} with its shells) / hexagonal "
            f"{100 * structure['hexagonal']:.0f} ({100 * hexagonal:.0f}) / other {100 * structure['other']:.0f}"
        )
    return " / ".join(f"{k} {100 * v:.0f}" for k, v in structure.items())


def markdown_table(summary: list[CvSummary], cfg: CompareConfig, sigmas: dict[str, float], judge: str) -> str:
    """The results table, its first line the settings; ``judge``: the crystallinity criterion's name."""
    standard = [s for s in summary if s.cv != "latent"]
    best_steps = min((s.median_steps for s in standard), default=math.inf)
    best_wall = min((s.median_wall_s for s in standard), default=math.inf)

    def fmt(x: float, unit: str = "") -> str:
        return "never (< half)" if math.isinf(x) else f"{x:.0f}{unit}"

    def ratio(x: float, best: float) -> str:
        if math.isinf(best) and math.isinf(x):
            return "–"
        if math.isinf(best):
            return "only this one"
        return "–" if math.isinf(x) else f"{x / best:.2f}"

    target = cfg.target
    rows = [
        f"{cfg.system}: {cfg.n_molecules} molecules ({cfg.n_atoms} atoms), T = {cfg.temp}, P = {target.pressure:g} "
        f"(units {target.units}); {_bias_words(cfg)}, bias STRIDE {cfg.stride}; SIGMA = {cfg.sigma_scale:g} × melt std; "
        f"budget {cfg.steps} steps; crystallised = {judge} > {cfg.crystal_threshold:g} "
        f"held {cfg.hold_steps} steps.",
        "",
        "| CV | SIGMA | crystallised | median steps to crystal | median wall s to crystal | ms/step | "
        "steps ÷ best standard | wall ÷ best standard | largest crystalline share (median) | "
        "structure formed (OVITO, last frame; %) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        st = structure_words(s.structure)
        blown = f" ({s.blew_up} blew up)" if s.blew_up else ""
        share = "–" if math.isnan(s.max_fraction) else f"{s.max_fraction:.2f}"
        rows.append(
            f"| {s.cv} | {sigmas.get(s.cv, float('nan')):.4g} | {s.crystallised}/{s.runs}{blown} | {fmt(s.median_steps)} | "
            f"{fmt(s.median_wall_s, ' s')} | {s.ms_per_step:.2f} | {ratio(s.median_steps, best_steps)} | "
            f"{ratio(s.median_wall_s, best_wall)} | {share} | {st} |"
        )
    return "\n".join(rows)


def plot(results: list[dict], cvs: tuple[str, ...], threshold: float, path: Path) -> None:
    """Solid fraction against the MD step of every run, one panel per CV of ``cvs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cvs = tuple(cv for cv in cvs if any(r["cv"] == cv for r in results))
    fig, axes = plt.subplots(1, len(cvs), figsize=(4 * len(cvs), 3.4), sharey=True, squeeze=False)
    for ax, cv in zip(axes[0], cvs):
        for r in (r for r in results if r["cv"] == cv):
            ax.plot(r["steps"], r["solid_fraction"], lw=0.9, label=f"seed {r['seed']}")
        ax.axhline(threshold, color="k", lw=0.6, ls=":")
        ax.set_title(f"biased on {cv}")
        ax.set_xlabel("MD step")
    axes[0][0].set_ylabel("solid fraction (freud ten Wolde)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bias_words(cfg) -> str:
    """The bias of a comparison in words (its table's heading)."""
    if cfg.method == "opes":
        return f"OPES_METAD PACE {cfg.pace}, BARRIER {cfg.barrier_kt:g} kT"
    return f"WT-METAD PACE {cfg.pace}, HEIGHT {cfg.height_kt:g} kT, BIASFACTOR {cfg.biasfactor:g}"
