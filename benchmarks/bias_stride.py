"""The bias STRIDE (PLUMED's multiple time stepping) measured: cost and accuracy of a bias
applied every ``k`` steps as a ``k``-fold impulse, for latentcv's default
(``METAD_DEFAULTS.bias_stride``) and its neighbours.

For each stride, in one run of this script (ratios side by side, the machine is shared):

- ms per MD step of LAMMPS with ``fix plumed`` + LATENT_CV + a RESTRAINT on one output,
  at ``--atoms`` (default 2 048), against plain MD;
- the NVE energy drift (kinetic + potential + bias, per atom: the largest excursion from
  the start) of 256 LJ atoms under a stiff RESTRAINT on the same output, at the state
  point's time step, against plain MD and stride 1.

    .venv/bin/python benchmarks/bias_stride.py MODEL [--strides 1 2 5 10 20] [--atoms 2048]

MODEL: an LJ model written by ``latentcv export`` (``make demo`` leaves demo_out/model.pt).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from latentcv.cv_models.engines import open_lammps
from latentcv.cv_models.native import paths
from latentcv.cv_models.systems import METAD_DEFAULTS, SYSTEMS, system_commands

NVE_SETUP = """\
velocity all create 1.2 4928 mom yes rot yes dist gaussian
fix md all nve
thermo_style custom step pe ke etotal
thermo 100000
run 200
"""


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="an LJ model file (latentcv export)")
    ap.add_argument("--strides", type=int, nargs="+", default=[1, 2, METAD_DEFAULTS.bias_stride, 10, 20])
    ap.add_argument("--atoms", type=int, default=2048, help="LJ atoms of the cost runs (4 n^3)")
    ap.add_argument("--cost-steps", type=int, default=200)
    ap.add_argument("--output", default="proj", help="the model output restrained")
    ap.add_argument(
        "--kappas", type=float, nargs="+", default=[200.0, 2000.0], help="RESTRAINT KAPPAs of the drift runs"
    )
    return ap.parse_args()


def plumed_dat(model: str, atoms: int, output: str, stride: int, kappa: float, at: float) -> str:
    """LATENT_CV on every atom and a RESTRAINT on ``output`` with STRIDE ``stride``."""
    return (
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={model} ATOMS=1-{atoms}\n"
        f"RESTRAINT ARG=cv.{output} AT={at} KAPPA={kappa} STRIDE={stride}\n"
    )


def instance(cells: int, dat: str | None, folder: str):
    """LAMMPS with the LJ system of ``cells`` fcc cells per edge (and ``fix plumed``)."""
    lmp = open_lammps(["-screen", "none", "-log", "none", "-nocite"], load_fix_plumed=dat is not None)
    lmp.commands_string(system_commands("lj", cells, density=0.85))
    if dat is not None:
        path = f"{folder}/plumed-{abs(hash(dat))}.dat"
        with open(path, "w") as f:
            f.write(dat)
        lmp.command(f"fix p all plumed plumedfile {path} outfile {path}.log")
        lmp.command("fix_modify p energy yes")
    return lmp


def ms_per_step(cells: int, dat: str | None, steps: int, folder: str) -> float:
    lmp = instance(cells, dat, folder)
    lmp.commands_string(NVE_SETUP.replace("run 200", "run 20"))
    t0 = time.perf_counter()
    lmp.command(f"run {steps} pre no post no")
    dt = time.perf_counter() - t0
    lmp.close()
    return 1000.0 * dt / steps


def nve_drift(dat: str | None, folder: str, chunks: int = 100, chunk: int = 20) -> float:
    """Largest |E_total(t) - E_total(0)| per atom over ``chunks`` x ``chunk`` steps, 256 atoms
    (inf: the run blew up)."""
    lmp = instance(4, dat, folder)
    energies = []
    try:
        lmp.commands_string(NVE_SETUP)
        for c in range(chunks):
            lmp.command(f"run {chunk} post no" + (" pre no" if c else ""))
            energies.append(lmp.get_thermo("etotal"))
    except Exception:  # noqa: BLE001 (LAMMPS raises a bare Exception: lost atoms)
        return float("inf")
    finally:
        lmp.close()
    e = np.array(energies)
    return float(np.abs(e - e[0]).max()) / 256


def main() -> None:
    import tempfile

    a = parse_args()
    cells = round((a.atoms / 4) ** (1 / 3))
    with tempfile.TemporaryDirectory() as folder:
        plain_ms = ms_per_step(cells, None, a.cost_steps * 5, folder)
        plain_drift = nve_drift(None, folder)
        rows = []
        for k in a.strides:
            cost = ms_per_step(cells, plumed_dat(a.model, 4 * cells**3, a.output, k, 1.0, 0.5), a.cost_steps, folder)
            drifts = [nve_drift(plumed_dat(a.model, 256, a.output, k, kappa, 0.5), folder) for kappa in a.kappas]
            rows.append((k, cost, drifts))
            print(f"bias_stride: STRIDE {k}: {cost:.2f} ms/step, drifts {drifts} per atom", flush=True)
    print(
        f"\nLJ at dt = {SYSTEMS['lj'].dt} (the state point's), T = 1.2 NVE melt, 1 thread; model {a.model}, "
        f"RESTRAINT on cv.{a.output} at 0.5; cost at {4 * cells**3} atoms, drift at 256 atoms over 2 000 steps "
        "(largest excursion of kinetic + potential + bias energy per atom, in ε; inf: the run blew up)\n"
    )
    head = " | ".join(f"drift, KAPPA {k:g}" for k in a.kappas)
    print(f"| bias STRIDE | ms/step | biased / plain | {head} |")
    print("|---|---|---|" + "---|" * len(a.kappas))
    print(f"| plain MD | {plain_ms:.3f} | 1.0 | " + " | ".join(f"{plain_drift:.1e}" for _ in a.kappas) + " |")
    for k, cost, drifts in rows:
        print(f"| {k} | {cost:.2f} | {cost / plain_ms:.1f} | " + " | ".join(f"{d:.1e}" for d in drifts) + " |")


if __name__ == "__main__":
    main()
