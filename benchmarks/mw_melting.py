"""The melting point of mW water from ice-water coexistence, against the published
T_m = 274.6 K (Molinero & Moore, J. Phys. Chem. B 113, 4008 (2009)). Prints the table of
docs/results.md ("mW water").

    .venv/bin/python benchmarks/mw_melting.py [--temps 264.6 269.6 279.6 284.6] [--steps 30000]
        [--cells 4 --ncz 10] [--out bench_out/mw_melting] [--reuse]

Each temperature: a half-ice slab (examples/mw/interface.lmp: ice Ih with secondary prism
faces {11-20} normal to z, the other half melted with the ice frozen, then the whole box free at
T and 1 atm, z barostat), dumped every ``--every`` steps; every frame judged by CHILL+
(cubic + hexagonal ice share, cv_models/analysis/ice.py). The ice grew (melted) when the
mean ice fraction of the last 3 frames is above (below) that of the first 3 by more than
``CHANGE``; T_m lies between the highest T where it grew and the lowest where it melted.
One LAMMPS process on one core at a time; about 1.5 min per temperature (1280 molecules,
about 2 ms/step on one core of a loaded machine). With 3 x 3 x 10 cells (720 molecules)
the slabs fluctuate by +-0.1 within 5 K of T_m and the verdicts there are noise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from latentcv.cv_models.analysis.ice import chill_plus_frame
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS

T_M_PUBLISHED = 274.6  # K, Molinero & Moore 2009
CHANGE = 0.03  # ice share change (first vs last 3 frames) that counts as growing / melting


def melting_runs(temps: list[float], cells: int, ncz: int, steps: int, every: int, out: Path, reuse: bool):
    """Run one half-ice slab per temperature; returns {T: (steps, ice fractions)}."""
    cfg = GeneratorConfig(
        system="mw",
        n_cells=cells,
        phases=("interface",),
        interface_ncz=ncz,
        interface_seeds=tuple(("slab", 0.5, float(t)) for t in temps),
        interface_steps=steps,
        interface_every=every,
    )
    by_name = generate(cfg, out, reuse=reuse).by_trajectory()
    runs = {}
    for t in temps:
        frames = by_name[f"mw-interface-slab0.5-T{float(t):g}-0"]
        runs[t] = (
            np.array([f.timestep for f in frames]),
            np.array([chill_plus_frame(f).ice_fraction for f in frames]),
        )
    return runs


def verdict(fraction: np.ndarray) -> tuple[float, float, str]:
    """(start, end, "grew" | "melted" | "holds") from the means of the first and last 3 frames."""
    start, end = float(fraction[:3].mean()), float(fraction[-3:].mean())
    word = "grew" if end > start + CHANGE else "melted" if end < start - CHANGE else "holds"
    return start, end, word


def bracket(rows: list[tuple[float, str]]) -> tuple[float | None, float | None]:
    """(highest T where the ice grew, lowest T where it melted)."""
    grew = [t for t, w in rows if w == "grew"]
    melted = [t for t, w in rows if w == "melted"]
    return (max(grew) if grew else None), (min(melted) if melted else None)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--temps", type=float, nargs="+", default=[264.6, 269.6, 272.1, 277.1, 279.6, 284.6])
    p.add_argument("--cells", type=int, default=4, help="unit cells along x and y (8 molecules each)")
    p.add_argument("--ncz", type=int, default=10, help="unit cells along z (a = 4.4 A each)")
    p.add_argument("--steps", type=int, default=40000, help="free coexistence steps (10 fs each)")
    p.add_argument("--every", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("bench_out/mw_melting"))
    p.add_argument("--reuse", action="store_true", help="read back runs of the same settings")
    a = p.parse_args(argv)
    spec = SYSTEMS["mw"]
    n = spec.molecules_per_cell * a.cells**2 * a.ncz
    print(f"mW ice Ih / water slabs, {n} molecules, {a.steps} steps x {spec.dt:g} fs, judged by CHILL+")
    runs = melting_runs(a.temps, a.cells, a.ncz, a.steps, a.every, a.out, a.reuse)
    print(f"{'T (K)':>7} {'T - T_m':>8} {'ice start':>10} {'ice end':>8}  verdict")
    rows = []
    for t, (_, frac) in sorted(runs.items()):
        start, end, word = verdict(frac)
        rows.append((t, word))
        print(f"{t:7.1f} {t - T_M_PUBLISHED:+8.1f} {start:10.3f} {end:8.3f}  {word}")
    lo, hi = bracket(rows)
    print(f"T_m bracket: grew up to {lo} K, melted from {hi} K (published {T_M_PUBLISHED} K)")


if __name__ == "__main__":
    main()
