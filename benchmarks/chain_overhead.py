"""Cost of the biased MD step: LAMMPS LJ with and without `fix plumed` + LATENT_CV.

Runs side by side in one process and prints a table of ms/step and the ratio to plain
MD (the machine is shared and noisy: compare the ratios, not absolute times).

    .venv/bin/python benchmarks/chain_overhead.py [--sizes 256 2048] [--steps 200] [--q6]
        [--model demo_out/model.pt ...] [--stride 1 10] [--threads 1 2] [--kernel optimised]

--model adds exported (lj) models, biased with a RESTRAINT on their first output; --stride
applies the bias every N steps (PLUMED's multiple-time-step STRIDE: the CV is computed
only on those steps).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cv_models import paths
from cv_models.engines import open_lammps
from export.analytic import save_coordination_model

SETUP = """\
units lj
atom_style atomic
lattice fcc 0.9
region box block 0 {cells} 0 {cells} 0 {cells}
create_box 1 box
create_atoms 1 box
mass 1 1.0
pair_style lj/cut 2.5
pair_modify shift yes
pair_coeff 1 1 1.0 1.0
neighbor 0.3 bin
velocity all create 0.58 1 mom yes rot yes
timestep 0.005
fix md all nvt temp 0.58 0.58 0.5
thermo 0
"""


def ms_per_step(cells: int, steps: int, plumed_dat: Path | None, kernel: str | None = None, warmup: int = 20) -> float:
    """LAMMPS wall time per step; ``kernel`` is the `fix plumed ... kernel` value (None: default)."""
    lmp = open_lammps(load_fix_plumed=plumed_dat is not None)
    try:
        lmp.commands_string(SETUP.format(cells=cells))
        if plumed_dat is not None:
            fix = f"fix bias all plumed plumedfile {plumed_dat} outfile {plumed_dat.with_suffix('.log')}"
            lmp.command(fix + (f" kernel {kernel}" if kernel else ""))
        lmp.command(f"run {warmup}")  # warm-up (setup, first neighbour lists, model warm-up)
        start = time.perf_counter()
        lmp.command(f"run {steps}")
        return (time.perf_counter() - start) / steps * 1e3
    finally:
        lmp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 2048], help="atom counts (4·cells³)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--q6", action="store_true", help="also PLUMED's Q6 (slow in the bundled kernel)")
    parser.add_argument("--model", action="append", default=[], help="exported lj model(s) to bias on")
    parser.add_argument("--stride", type=int, nargs="+", default=[1], help="bias STRIDE(s) for --model")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="LATENT_CV THREADS for --model")
    parser.add_argument("--kernel", default="", help="fix plumed kernel for every run (e.g. optimised)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="latentcv-bench-"))
    model = save_coordination_model(tmp / "coord.pt", atoms_per_molecule=1, cutoff=1.5, length_unit="lj")
    rows = []
    for natoms in args.sizes:
        cells = round((natoms / 4) ** (1 / 3))
        n = 4 * cells**3
        variants = {
            "plain MD": None,
            "LATENT_CV (analytic), METAD": f"cv: LATENT_CV MODEL={model} ATOMS=1-{n} THREADS=1\n"
            "METAD ARG=cv.mean SIGMA=0.1 HEIGHT=0.3 PACE=100 BIASFACTOR=10 TEMP=0.58 FILE=/dev/null\n",
        }
        for path in args.model:
            from cv_models._lib import _core

            info = _core.Model(path, warmup=False)
            first = info.output_names[0]
            for stride in args.stride:
                for threads in args.threads:
                    label = f"{Path(path).name} ({info.dtype}) STRIDE={stride}" + (f" THREADS={threads}" if threads != 1 else "")
                    variants[label] = (
                        f"cv: LATENT_CV MODEL={Path(path).resolve()} ATOMS=1-{n} THREADS={threads}\n"
                        f"RESTRAINT ARG=cv.{first} AT=0.0 KAPPA=1 STRIDE={stride}\n"
                    )
        if args.q6:
            variants["PLUMED Q6 VMEAN, RESTRAINT"] = (
                f"q6: Q6 SPECIES=1-{n} SWITCH={{RATIONAL R_0=1.3 D_MAX=1.5}} VMEAN\n"
                "RESTRAINT ARG=q6.vmean AT=0.3 KAPPA=10\n"
            )
        base = None
        for name, body in variants.items():
            dat = None
            if body is not None:
                dat = tmp / f"{n}_{len(rows)}.dat"
                dat.write_text(f"LOAD FILE={paths.plumed_plugin_path()}\n{body}")
            t = ms_per_step(cells, args.steps, dat, args.kernel or None)
            base = t if base is None else base
            rows.append((n, name, t, t / base))
    width = max(len(r[1]) for r in rows)
    print(f"{'atoms':>6}  {'variant':{width}s} {'ms/step':>9} {'× plain':>8}")
    for n, name, t, ratio in rows:
        print(f"{n:6d}  {name:{width}s} {t:9.3f} {ratio:8.2f}")


if __name__ == "__main__":
    main()
