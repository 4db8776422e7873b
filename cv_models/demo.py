"""The end-to-end demo: LAMMPS metadynamics of a small Lennard-Jones melt biased on LATENT_CV.

For now the CV is the analytic test model (``export.analytic``); it is replaced by the
trained autoencoder once the export of trained models lands. Everything runs through
the production path: model file → PLUMED action ``LATENT_CV`` (C++ core over libtorch)
→ PLUMED kernel → latentcv's LAMMPS ``fix plumed`` plugin → LAMMPS.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cv_models import paths
from cv_models.engines import open_lammps

LAMMPS_INPUT = """\
# Lennard-Jones melt (DESIGN §6 state point T=0.58, P=1), metadynamics through fix plumed
units           lj
atom_style      atomic
lattice         fcc 0.9
region          box block 0 {cells} 0 {cells} 0 {cells}
create_box      1 box
create_atoms    1 box
mass            1 1.0
pair_style      lj/cut 2.5
pair_modify     shift yes
pair_coeff      1 1 1.0 1.0
neighbor        0.3 bin
velocity        all create 2.0 {seed} mom yes rot yes dist gaussian
timestep        0.005
# melt the lattice, then cool to the undercooled state point
fix             melt all nvt temp 2.0 2.0 0.5
run             {melt_steps}
unfix           melt
fix             md all npt temp 0.58 0.58 0.5 iso 1.0 1.0 5.0
fix             bias all plumed plumedfile {plumed_dat} outfile {plumed_log}
fix_modify      bias energy yes
thermo_style    custom step temp press pe f_bias
thermo          {thermo}
run             {steps}
"""

PLUMED_INPUT = """\
# latentcv demo: well-tempered metadynamics on a LATENT_CV output
LOAD FILE={plugin}
cv: LATENT_CV MODEL={model} ATOMS=1-{natoms} DEVICE=cpu THREADS=1
metad: METAD ARG=cv.mean SIGMA=0.1 HEIGHT=0.3 PACE=100 BIASFACTOR=10 TEMP=0.58 FILE={hills}
PRINT ARG=cv.mean,cv.meansq,metad.bias STRIDE=50 FILE={colvar}
"""


def run_demo(out: str | Path = "demo_out", steps: int | None = None, cells: int = 4, seed: int = 12345) -> dict:
    """Run the demo into ``out``; returns a summary dict and prints a one-line summary."""
    from export.analytic import save_coordination_model

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = 5000 if steps is None else steps
    natoms = 4 * cells**3
    model = save_coordination_model(out / "model.pt", atoms_per_molecule=1, cutoff=1.5, length_unit="lj")
    plumed_dat = out / "plumed.dat"
    plumed_dat.write_text(
        PLUMED_INPUT.format(
            plugin=paths.plumed_plugin_path(), model=model, natoms=natoms,
            hills=out / "HILLS", colvar=out / "COLVAR",
        )
    )
    lammps_in = out / "in.lammps"
    lammps_in.write_text(
        LAMMPS_INPUT.format(
            cells=cells, seed=seed, melt_steps=1000, steps=steps, thermo=max(steps // 10, 1),
            plumed_dat=plumed_dat, plumed_log=out / "plumed.log",
        )
    )
    start = time.perf_counter()
    lmp = open_lammps(["-log", str(out / "log.lammps")], load_fix_plumed=True)
    try:
        lmp.file(str(lammps_in))
    finally:
        lmp.close()
    elapsed = time.perf_counter() - start

    colvar = np.loadtxt(out / "COLVAR", comments="#", ndmin=2)
    hills = np.loadtxt(out / "HILLS", comments="#", ndmin=2)
    summary = {
        "atoms": natoms,
        "steps": steps,
        "hills": int(hills.shape[0]),
        "cv_min": float(colvar[:, 1].min()),
        "cv_max": float(colvar[:, 1].max()),
        "final_bias": float(colvar[-1, 3]),
        "seconds": elapsed,
    }
    print(
        f"latentcv demo: {natoms} LJ atoms, {steps} metadynamics steps in {elapsed:.1f} s; "
        f"{summary['hills']} hills; cv.mean spanned {summary['cv_min']:.3f}–{summary['cv_max']:.3f}; "
        f"final bias {summary['final_bias']:.3f} ε; files in {out}"
    )
    return summary
