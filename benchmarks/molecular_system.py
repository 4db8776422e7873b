"""Validate the trimer system (an orientationally ordered molecular crystal): T_m, stability,
phase contrast of centre q6 vs orientational order, speed. Prints the table of docs/data.md.

    .venv/bin/python benchmarks/molecular_system.py [--out bench_out/trimers] [--quick] [--reuse]

(a) T_m at P=1 from coexistence: half crystal / half melt slabs (examples/trimers/
    interface.lmp, interface normal z, rods along x) at several T; the share of ordered
    molecules (local P2 > 0.7) rises where the crystal grows and falls where it melts.
(b) crystal and melt runs at the state point (SYSTEMS["trimers"]) for --prod steps:
    nematic order S, mean local P2, ten Wolde on centres (cutoff "auto") per frame.
(c) contrast at the state point: mean centre q6 (PLUMED Q6 VMEAN, the crystal's cutoff 1.5
    in both phases; also with each frame's "auto" cutoff) and local P2, crystal vs melt, as
    frame means and as per-molecule overlap (the error of the best threshold).
(d) ms/step of the production runs (from the LAMMPS logs).
Minutes on one core (about 12 with the defaults).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from latentcv.cv_models.analysis import TenWoldeConfig, ten_wolde_frame
from latentcv.cv_models.analysis.orientation import orientation_frame
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS

SYSTEM = "trimers"
ORDERED = 0.7  # a molecule is "ordered" if its mean P2 with its neighbours exceeds this
CHANGE = 0.05  # an interface run grows / melts if its ordered share (means of the first and last
#   3 frames) rises / falls by more than this: 22 of 432 molecules, 0.6 of a 36-molecule layer


def ordered_share(frame, cutoff: float) -> float:
    return float((orientation_frame(frame, cutoff).local_p2 > ORDERED).mean())


def best_threshold_error(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest misclassification rate of a threshold between samples a and b (0: separate,
    0.5: indistinguishable), either orientation."""
    x = np.concatenate([a, b])
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))])
    y = y[np.argsort(x)]
    # threshold after k smallest values: errors = ones among them + zeros above (or the reverse)
    ones_below = np.concatenate([[0], np.cumsum(y)])
    zeros_above = (len(y) - y.sum()) - (np.arange(len(y) + 1) - ones_below)
    err = (ones_below + zeros_above) / len(y)
    return float(min(err.min(), (1 - err).min()))


def loop_ms_per_step(log: Path, steps: int = 0) -> float:
    """ms/step of the last ``steps`` steps in a LAMMPS log (the generator splits a ``run``
    into chunks, each with its own "Loop time" line; 0: the last line only)."""
    m = re.findall(r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps", log.read_text())
    t_sum = n_sum = 0
    for t, n in reversed(m):
        t_sum, n_sum = t_sum + float(t), n_sum + int(n)
        if n_sum >= steps:
            break
    return 1000 * t_sum / n_sum


def melting_point(out: Path, temps: list[float], steps: int, every: int, reuse: bool = False):
    cfg = GeneratorConfig.preset(
        "tiny",
        SYSTEM,
        phases=("interface",),
        n_cells=3,
        interface_ncz=6,
        interface_seeds=tuple(("slab", 0.5, t) for t in temps),
        interface_steps=steps,
        interface_every=every,
    )
    ds = generate(cfg, out / "interface", progress=False, reuse=reuse)
    cut = SYSTEMS[SYSTEM].tenwolde_cutoff
    rows = []
    for t, (name, frames) in zip(temps, ds.by_trajectory().items()):
        share = [ordered_share(f, cut) for f in frames]
        s0, s1 = float(np.mean(share[:3])), float(np.mean(share[-3:]))  # first / last 3 frames
        rows.append((t, s0, s1, "grows" if s1 > s0 + CHANGE else "melts" if s1 < s0 - CHANGE else "holds"))
    grows = [t for t, *_, v in rows if v == "grows"]
    melts = [t for t, *_, v in rows if v == "melts"]
    return rows, (max(grows) if grows else None), (min(melts) if melts else None)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench_out/trimers")
    p.add_argument("--temps", type=float, nargs="+", default=[1.1, 1.35, 1.4, 1.45, 1.5])
    p.add_argument("--interface-steps", type=int, default=40000)
    p.add_argument("--prod", type=int, default=50000)
    p.add_argument("--quick", action="store_true", help="short runs (a smoke test, not the numbers)")
    p.add_argument("--reuse", action="store_true", help="read back finished runs of the same settings")
    a = p.parse_args()
    if a.quick:
        a.temps, a.interface_steps, a.prod = [1.1, 1.8], 3000, 5000
    return a


def print_melting_point(rows: list, t_grow: float | None, t_melt: float | None) -> None:
    print("(a) coexistence, half-crystal slabs, 432 molecules, share of ordered molecules start -> end:")
    for t, s0, s1, verdict in rows:
        print(f"    T={t:<5g} {s0:.2f} -> {s1:.2f}  {verdict}")
    if t_grow is not None and t_melt is not None:
        print(
            f"    T_m = {(t_grow + t_melt) / 2:.3f} +- {(t_melt - t_grow) / 2:.3f}  (grows at {t_grow}, melts at {t_melt})"
        )
    else:
        print(f"    T_m not bracketed (highest growing T {t_grow}, lowest melting T {t_melt})")


def trajectory_stats(frames: list, cut: float, log: Path, prod: int) -> dict:
    """Order parameters of one state-point trajectory (frame series and per-molecule pools)."""
    o = [orientation_frame(f, cut) for f in frames]
    fixed = [ten_wolde_frame(f, TenWoldeConfig(cutoff=cut)) for f in frames]  # the same cutoff in both phases
    tw = []
    for f in frames:
        try:
            tw.append(ten_wolde_frame(f, TenWoldeConfig(cutoff="auto")))
        except ValueError:  # a melt frame's centre g(r) may have no peak above 1.5: crystal cutoff
            tw.append(ten_wolde_frame(f, TenWoldeConfig(cutoff=cut)))
    return dict(
        frames=len(frames),
        S=np.array([x.nematic for x in o]),
        p2=np.array([x.mean_local_p2 for x in o]),
        q6=np.array([x.mean_q for x in fixed]),
        q6auto=np.array([x.mean_q for x in tw]),
        solid=np.array([x.solid_fraction for x in tw]),
        cut=np.array([x.cutoff for x in tw]),
        nb=np.array([x.n_neighbours.mean() for x in tw]),
        mol_q6=np.concatenate([x.q for x in fixed]),
        mol_p2=np.concatenate([x.local_p2 for x in o]),
        dens=np.array([f.n_molecules / abs(np.linalg.det(f.cell)) for f in frames]),
        ms=loop_ms_per_step(log, prod),
        atoms=frames[0].n_atoms,
    )


def print_stability(stats: dict, spec, prod: int, n_molecules: int) -> None:
    print(
        f"(b) stability at T={spec.temperature}, P={spec.pressure}, {prod} steps after equilibration "
        f"(dt {spec.dt}), {n_molecules} molecules:"
    )
    print(
        "    trajectory          frames  S (min-max)        local P2 (min-max)   q6 (1.5)   ten Wolde solid (auto cutoff, neighbours)  density"
    )
    for name, s in stats.items():
        print(
            f"    {name:<19} {s['frames']:>5}  {s['S'].mean():.3f} ({s['S'].min():.3f}-{s['S'].max():.3f})  "
            f"{s['p2'].mean():.3f} ({s['p2'].min():.3f}-{s['p2'].max():.3f})    {s['q6'].mean():.3f}      "
            f"{s['solid'].mean():.3f} ({s['cut'].mean():.2f} sigma, {s['nb'].mean():.1f})                  "
            f"{s['dens'].mean():.3f}"
        )


def print_contrast(c: dict, m: dict, cut: float) -> None:
    """Crystal ``c`` vs melt ``m`` (trajectory_stats dicts) and the speed of both."""

    def frame_gap(key):  # gap between the phases' frame means in units of the larger frame std
        return abs(c[key].mean() - m[key].mean()) / max(c[key].std(), m[key].std(), 1e-12)

    print("(c) phase contrast, crystal vs melt:")
    print(
        f"    centre q6 (VMEAN, cutoff {cut}): {c['q6'].mean():.3f} vs {m['q6'].mean():.3f}   frame gap "
        f"{frame_gap('q6'):.0f} std   per-molecule best-threshold error "
        f"{best_threshold_error(c['mol_q6'], m['mol_q6']):.3f}   (auto cutoff: {c['q6auto'].mean():.3f} vs "
        f"{m['q6auto'].mean():.3f}, frame gap {frame_gap('q6auto'):.0f} std)"
    )
    print(
        f"    local P2:           {c['p2'].mean():.3f} vs {m['p2'].mean():.3f}   frame gap {frame_gap('p2'):.0f} std   "
        f"per-molecule best-threshold error {best_threshold_error(c['mol_p2'], m['mol_p2']):.3f}"
    )
    print(f"    nematic S:          {c['S'].mean():.3f} vs {m['S'].mean():.3f}")
    print(f"    ten Wolde solid:    {c['solid'].mean():.3f} vs {m['solid'].mean():.3f}")
    print(
        f"(d) speed: {c['ms']:.2f} ms/step crystal, {m['ms']:.2f} ms/step melt ({c['atoms']} atoms, 1 core, "
        "shared machine)"
    )


def main() -> None:
    a = parse_args()
    out = Path(a.out)
    spec = SYSTEMS[SYSTEM]
    print_melting_point(*melting_point(out, a.temps, a.interface_steps, a.interface_steps // 10, a.reuse))
    cfg = GeneratorConfig.preset("default", SYSTEM, prod_steps=a.prod, dump_every=max(a.prod // 20, 1))
    ds = generate(cfg, out / "state_point", progress=False, reuse=a.reuse)
    cut = spec.tenwolde_cutoff
    stats = {
        name: trajectory_stats(frames, cut, out / "state_point" / f"{name}.log", a.prod)
        for name, frames in ds.by_trajectory().items()
    }
    print_stability(stats, spec, a.prod, ds[0].n_molecules)
    print_contrast(stats[f"{SYSTEM}-crystal-0"], stats[f"{SYSTEM}-melt-0"], cut)


if __name__ == "__main__":
    main()
