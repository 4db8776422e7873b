"""The bias block of ``latentcv plumed-input``: well-tempered METAD (default) or PLUMED's
OPES_METAD, and the documented rule that says whether its hills can reach the barrier
within a budget of MD steps (docs/export.md, "Will the hills get there?").

The estimate (:func:`steps_to_cross`) is the hill-volume argument of metadynamics: to
lift the melt basin by the barrier ΔF over the CV distance D from the melt to the
critical nucleus, WT-METAD must deposit a bias volume of about ½ ΔF (1 − 1/γ) D; a hill
adds H σ √(2π), and well-tempering shrinks later hills, on average by
f = (γ kT/ΔF)(1 − exp(−ΔF/(γ kT))). Hills = ½ ΔF (1 − 1/γ) D / (f H σ √(2π)); steps =
hills × PACE. It is an order-of-magnitude rule (a barrier is not a triangle, and diffusion
along the CV adds time), good for telling 10⁴ from 10⁷ steps.
"""

from __future__ import annotations

import math
from typing import List, Optional


__all__ = ["steps_to_cross", "crossing_distance", "budget_review", "opes_lines", "BIAS_METHODS"]

BIAS_METHODS = ("metad", "opes")


def steps_to_cross(
    barrier_kt: float, distance: float, sigma: float, height_kt: float, pace: int, biasfactor: float
) -> float:
    """MD steps for WT-METAD to fill ``barrier_kt`` (kT) over ``distance`` (CV unit) with hills
    of ``height_kt`` (kT) and width ``sigma`` every ``pace`` steps, bias factor ``biasfactor``."""
    gamma = biasfactor
    volume = 0.5 * barrier_kt * (1.0 - 1.0 / gamma) * distance
    x = barrier_kt / gamma
    shrink = (1.0 - math.exp(-x)) / x if x > 0 else 1.0
    hills = volume / (shrink * height_kt * sigma * math.sqrt(2.0 * math.pi))
    return hills * pace


def crossing_distance(cv: str, span: Optional[float], critical_size: Optional[float]) -> tuple[Optional[float], str]:
    """The distance D from the melt to the barrier top along ``cv``: the critical nucleus
    size for the counts (``n_crystal``, ``n_nucleus``: given with --critical-size), half the
    melt → crystal distance ``span`` otherwise. (None, why) when it is not known."""
    if cv in ("n_crystal", "n_nucleus"):
        if critical_size is None:
            return None, "pass --critical-size N (molecules in the critical nucleus) to check the budget"
        return critical_size, f"the critical nucleus, {critical_size:g} molecules (--critical-size)"
    if span is None or not span > 0:
        return None, f"the melt -> crystal distance of cv.{cv} is unknown"
    return 0.5 * span, f"half the melt -> crystal distance of cv.{cv} ({span:.4g})"


def budget_review(steps: float, budget: Optional[int], distance_what: str, barrier_kt: float) -> List[str]:
    """The plumed.dat comment on the estimate; a ``# REVIEW BUDGET`` block when it exceeds ``budget``."""
    line = (
        f"#   Estimate: ~{steps:.2g} steps to fill a {barrier_kt:g} kT barrier over {distance_what} "
        "(docs/export.md, 'Will the hills get there?')."
    )
    if budget is None or steps <= budget:
        return [line]
    return [
        line,
        f"# REVIEW BUDGET: that is more than the {budget} steps you plan (--budget): the hills will not reach",
        "#   the crystal in time. CHANGE: wider hills (--sigma), higher (--height), a shorter PACE, a CV whose",
        "#   melt -> nucleus distance is smaller (n_nucleus), or OPES_METAD (--method opes), which fills faster.",
    ]


def opes_lines(
    label: str, arg: str, sigma: float, barrier: float, pace: int, temp: float, kernels: str, stride: int
) -> List[str]:
    """The OPES_METAD line on the value ``arg`` and its comment (Invernizzi & Parrinello, J.
    Phys. Chem. Lett. 11, 2731 (2020)): BARRIER in PLUMED's energy unit; SIGMA the starting
    kernel width (OPES adapts it)."""
    stride_kw = f" STRIDE={stride}" if stride > 1 else ""
    return [
        f"#   OPES_METAD: on-the-fly probability enhanced sampling; BARRIER={barrier:.6g} is the expected barrier",
        "#   in PLUMED's energy unit (CHANGE to your estimate: too low slows it, too high overshoots);",
        f"#   SIGMA={sigma:.6g} the starting kernel width, PACE={pace} steps between kernels. FILE: the kernels written.",
        f"{label}: OPES_METAD ARG={arg} SIGMA={sigma:.6g} BARRIER={barrier:.6g} PACE={pace} TEMP={temp:g} "
        f"FILE={kernels}{stride_kw}",
    ]
