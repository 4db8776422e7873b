"""The melting temperature T_m and the enthalpy of melting Δh_m of latentcv's Lennard-Jones
system at P* = 1 (lj/cut 2.5 shifted, examples/lj), for Δμ(T) ≈ Δh_m (T_m − T) / T_m in the
nucleation reports. Prints the tables of docs/results.md ("LJ melting point and enthalpy
of melting").

    .venv/bin/python benchmarks/lj_melting.py [--temps 0.66 0.68 0.70 0.71 0.72 0.74]
        [--cells 6 --ncz 18] [--steps 20000] [--tm 0.70] [--out bench_out/lj_melting] [--reuse]

1. T_m, after benchmarks/mw_melting.py: one half-crystal slab per temperature
   (examples/lj/interface.lmp: fcc, (001) faces normal to z, the upper half melted at
   T* = 1.5 with the crystal frozen, then the whole box free at T and P* = 1 under a z-only
   barostat), dumped every ``--every`` steps; every frame judged by freud's ten Wolde solid
   fraction (cutoff 1.5). The crystal grew (melted) when the mean solid fraction of the last
   3 frames is above (below) that of the first 3 by more than ``CHANGE``; T_m lies between
   the highest T where it grew and the lowest where it melted. The crystal is first
   equilibrated whole at T (``--equil`` steps, isotropic barostat) so that x and y, held by
   the crystal afterwards, are its own at T and P* = 1.
2. Δh_m: the fcc crystal (examples/lj/crystal.lmp) and the liquid (examples/lj/melt.lmp:
   melted at 1.5, quenched, equilibrated), ``--bulk-cells``³ × 4 atoms each, at T_m (the
   bracket's midpoint, or ``--tm``) and at the state point T* = 0.58, where the undercooled
   liquid is sampled only ``--prod-058`` steps and its solid fraction is reported (it must
   stay low). Enthalpy per atom h = pe + ke + P V / N from LAMMPS's own thermo ``enthalpy``
   keyword, sampled every ``--sample`` steps of the production runs.

One LAMMPS process on one core at a time; about 4.5 min in all on one core of the loaded
2-core machine (slabs 2592 atoms, ~1.2 ms/step, 36 s per temperature; bulk runs 500 atoms, 6 s each).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mw_melting import bracket, verdict  # noqa: E402  (same verdict rule as the mW slabs)

from latentcv.cv_models.analysis.crystallinity import freud_solid_fraction  # noqa: E402
from latentcv.cv_models.data.readers import read_lammps_dump  # noqa: E402
from latentcv.cv_models.generate import GeneratorConfig, run_input  # noqa: E402
from latentcv.cv_models.systems import SYSTEMS  # noqa: E402

SPEC = SYSTEMS["lj"]
CUTOFF = SPEC.tenwolde_cutoff  # 1.5
STATE_T = SPEC.temperature  # 0.58
THERMO = ("temp", "press", "density", "pe", "ke", "enthalpy", "vol")


class Sampler:
    """Stands in for run_input's progress bar: after every chunk (``chunk_steps`` steps) it
    records LAMMPS's thermo keywords, per atom (``thermo_modify norm yes``, lj units)."""

    def __init__(self, lmp):
        self.lmp, self.done, self.rows = lmp, 0, []

    def update(self, n: int) -> None:
        self.done += n
        self.rows.append([self.done] + [self.lmp.get_thermo(k) for k in THERMO])


def run_lammps(template: Path, variables: dict, out: Path, name: str, sample: int, reuse: bool) -> np.ndarray:
    """Run one example input with ``variables``; returns the thermo samples [steps done, *THERMO]
    (saved as ``name.json``; read back with ``reuse`` when the variables are the same)."""
    from latentcv.cv_models.engines import open_lammps

    out.mkdir(parents=True, exist_ok=True)
    v = dict(variables, examples=str(SPEC.template_dir), data=str(out / f"{name}.data"), dump=str(out / f"{name}.dump"))
    stamp = out / f"{name}.json"
    if reuse and stamp.exists() and Path(v["dump"]).exists():
        saved = json.loads(stamp.read_text())
        if saved["variables"] == {k: str(x) for k, x in v.items()}:
            return np.array(saved["thermo"])
    Path(v["dump"]).unlink(missing_ok=True)
    began = time.perf_counter()
    lmp = open_lammps(["-log", str(out / f"{name}.log"), "-nocite"], variables=v)
    try:
        sampler = Sampler(lmp)
        run_input(lmp, template, chunk_steps=sample, progress=sampler)
    finally:
        lmp.close()
    seconds = time.perf_counter() - began
    stamp.write_text(
        json.dumps({"variables": {k: str(x) for k, x in v.items()}, "seconds": seconds, "thermo": sampler.rows})
    )
    print(f"  [{name}: {sampler.done} steps, {seconds:.0f} s]", flush=True)
    return np.array(sampler.rows)


def frames_of(out: Path, name: str):
    return read_lammps_dump(out / f"{name}.dump", data_file=out / f"{name}.data", units="lj", trajectory=name)


def solid_fractions(out: Path, name: str) -> np.ndarray:
    return np.array([freud_solid_fraction(f, CUTOFF) for f in frames_of(out, name)])


def coexistence(a) -> list[tuple[float, float, float, str, float, float]]:
    """One slab per temperature: (T, solid start, solid end, verdict, h first, h last 10 %)."""
    cfg = GeneratorConfig(
        system="lj",
        n_cells=a.cells,
        phases=("interface",),
        interface_ncz=a.ncz,
        interface_seeds=tuple(("slab", 0.5, float(t)) for t in a.temps),
        interface_steps=a.steps,
        interface_every=a.every,
        seed=a.seed,
    )
    rows = []
    for run, t in zip(cfg.runs(), a.temps):
        v = dict(run["variables"], equil=a.equil, melt=a.melt, relax=a.relax)
        thermo = run_lammps(run["template"], v, a.out, run["name"], a.sample, a.reuse)
        prod = thermo[thermo[:, 0] > thermo[-1, 0] - a.steps]
        h = prod[:, 1 + THERMO.index("enthalpy")]
        tenth = max(1, len(h) // 10)
        start, end, word = verdict(solid_fractions(a.out, run["name"]))
        rows.append((float(t), start, end, word, float(h[:tenth].mean()), float(h[-tenth:].mean())))
    return rows


def block_mean(x: np.ndarray, blocks: int = 5) -> tuple[float, float]:
    """Mean and its standard error from ``blocks`` block averages."""
    b = np.array([c.mean() for c in np.array_split(x, blocks)])
    return float(x.mean()), float(b.std(ddof=1) / np.sqrt(blocks))


def bulk(a, phase: str, temp: float, prod: int) -> dict:
    """One crystal or liquid run at ``temp``: h, density, pe per atom (mean, s.e.) and solid fractions."""
    v = dict(
        ncells=a.bulk_cells,
        density=SPEC.density if phase == "crystal" else SPEC.melt_density,
        seed=a.seed,
        temp=temp,
        press=SPEC.pressure,
        dt=SPEC.dt,
        tdamp=SPEC.tdamp,
        pdamp=SPEC.pdamp,
        equil=a.bulk_equil,
        prod=prod,
        every=a.bulk_every,
    )
    if phase == "liquid":
        v.update(tmelt=SPEC.melt_temperature, melt=4000, quench=4000)
    template = SPEC.template_dir / ("crystal.lmp" if phase == "crystal" else "melt.lmp")
    name = f"lj-{phase}-T{temp:g}"
    thermo = run_lammps(template, v, a.out, name, a.sample, a.reuse)
    p = thermo[thermo[:, 0] > thermo[-1, 0] - prod]
    col = {k: p[:, 1 + i] for i, k in enumerate(THERMO)}
    res = {k: block_mean(col[k]) for k in ("temp", "press", "density", "pe", "enthalpy")}
    # the thermo keyword against pe + ke + P V / N (lj units, per atom)
    n_atoms = 4 * a.bulk_cells**3
    h_check = col["pe"] + col["ke"] + col["press"] * col["vol"] / n_atoms
    res["h_check_max_dev"] = float(np.abs(h_check - col["enthalpy"]).max())
    res["solid"] = solid_fractions(a.out, name)
    return res


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--temps", type=float, nargs="+", default=[0.66, 0.68, 0.70, 0.71, 0.72, 0.74])
    p.add_argument("--cells", type=int, default=6, help="fcc unit cells along x and y (4 atoms each)")
    p.add_argument("--ncz", type=int, default=18, help="fcc unit cells along z")
    p.add_argument("--equil", type=int, default=5000, help="whole crystal at T (iso barostat) before the slab")
    p.add_argument("--melt", type=int, default=1000, help="steps melting, then as many cooling, the liquid half")
    p.add_argument(
        "--relax", type=int, default=4000, help="whole box at T before the dumps (the z barostat needs ~20 tau)"
    )
    p.add_argument("--steps", type=int, default=20000, help="free coexistence steps (dt 0.005)")
    p.add_argument("--every", type=int, default=1000, help="dump stride of the slabs")
    p.add_argument("--tm", type=float, default=None, help="T of the Δh_m runs (default: bracket midpoint)")
    p.add_argument("--bulk-cells", type=int, default=5, help="bulk runs: cells per edge (500 atoms at 5)")
    p.add_argument("--bulk-equil", type=int, default=5000)
    p.add_argument("--bulk-prod", type=int, default=20000)
    p.add_argument("--prod-058", type=int, default=10000, help="production of the undercooled liquid at 0.58")
    p.add_argument("--bulk-every", type=int, default=1000, help="dump stride of the bulk runs (solid fraction)")
    p.add_argument("--sample", type=int, default=100, help="thermo sampling stride (steps)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-slabs", action="store_true", help="only the bulk runs (needs --tm)")
    p.add_argument("--out", type=Path, default=Path("bench_out/lj_melting"))
    p.add_argument("--reuse", action="store_true", help="read back runs of the same settings")
    a = p.parse_args(argv)

    lo = hi = None
    if not a.skip_slabs:
        n = 4 * a.cells**2 * a.ncz
        print(
            f"LJ fcc / liquid slabs at P* = {SPEC.pressure:g}, {n} atoms ({a.cells} x {a.cells} x {a.ncz} cells), "
            f"{a.steps} steps x {SPEC.dt:g}, judged by the ten Wolde solid fraction (freud, cutoff {CUTOFF:g})\n"
        )
        rows = coexistence(a)
        print("| T* | solid start | solid end | verdict | h start | h end |")
        print("|---|---|---|---|---|---|")
        for t, s0, s1, word, h0, h1 in rows:
            print(f"| {t:.3f} | {s0:.3f} | {s1:.3f} | {word} | {h0:+.3f} | {h1:+.3f} |")
        lo, hi = bracket([(r[0], r[3]) for r in rows])
        print(f"\nT_m bracket: grew up to {lo}, melted from {hi}")
    tm = a.tm
    if tm is None:
        if lo is None or hi is None or lo > hi:
            raise SystemExit("no bracket: give --tm")
        tm = round(0.5 * (lo + hi), 4)

    print(f"\nBulk runs, {4 * a.bulk_cells**3} atoms, NPT P* = {SPEC.pressure:g}; per atom, mean ± s.e. (5 blocks)\n")
    res = {}
    for temp, prod_l in ((tm, a.bulk_prod), (STATE_T, a.prod_058)):
        res[temp] = {"crystal": bulk(a, "crystal", temp, a.bulk_prod), "liquid": bulk(a, "liquid", temp, prod_l)}
    print("| T* | phase | steps | ρ* | u (pe) | h | solid fraction (min–max) |")
    print("|---|---|---|---|---|---|---|")
    for temp, r in res.items():
        for phase, x in r.items():
            steps = a.bulk_prod if (phase == "crystal" or temp == tm) else a.prod_058
            print(
                f"| {temp:g} | {phase} | {steps} | {x['density'][0]:.4f} ± {x['density'][1]:.4f} "
                f"| {x['pe'][0]:.4f} ± {x['pe'][1]:.4f} | {x['enthalpy'][0]:.4f} ± {x['enthalpy'][1]:.4f} "
                f"| {x['solid'].min():.3f}–{x['solid'].max():.3f} |"
            )
    print()
    dh = {}
    for temp, r in res.items():
        d = r["liquid"]["enthalpy"][0] - r["crystal"]["enthalpy"][0]
        e = np.hypot(r["liquid"]["enthalpy"][1], r["crystal"]["enthalpy"][1])
        dh[temp] = d
        print(f"h_l − h_c at T* = {temp:g}: {d:.4f} ± {e:.4f}")
    dev = max(x["h_check_max_dev"] for r in res.values() for x in r.values())
    print(f"(thermo enthalpy vs pe + ke + P V / N: max |difference| {dev:.1e})")
    print(
        f"T* = {STATE_T:g}: undercooling (T_m − T)/T_m = {(tm - STATE_T) / tm:.3f}; "
        f"Δμ ≈ Δh_m (T_m − T)/T_m = {dh[tm] * (tm - STATE_T) / tm:.4f} per atom "
        f"= {dh[tm] * (tm - STATE_T) / tm / STATE_T:.3f} kT"
    )


if __name__ == "__main__":
    main()
