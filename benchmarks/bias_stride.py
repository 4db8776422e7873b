"""The bias STRIDE (PLUMED's multiple time stepping) measured: cost and accuracy of a bias
applied every ``k`` steps as a ``k``-fold impulse, for a system's default
(``SystemSpec.bias_stride``: 5 for LJ, 1 for mW water) and its neighbours.

For each stride, in one run of this script (ratios side by side, the machine is shared):

- ms per MD step of LAMMPS with ``fix plumed`` + LATENT_CV + a RESTRAINT on one output,
  at ``--atoms`` (LJ: 2 048 atoms; mW: 1 000 molecules), against plain MD;
- the NVE energy drift (kinetic + potential + bias, per molecule: the largest excursion
  from the start) of a small box (256 LJ atoms; 216 mW molecules) under a stiff RESTRAINT
  on the same output, at the system's time step, against plain MD and stride 1.

    .venv/bin/python benchmarks/bias_stride.py MODEL [--strides 1 2 5 10 20] [--atoms 2048]
    .venv/bin/python benchmarks/bias_stride.py MODEL --system mw     # strides 1 2 5 10, 1 000 molecules

MODEL: a model written by ``latentcv export`` for the system (LJ: ``make demo`` leaves
demo_out/model.pt; mW: docs/tutorial-ice.md). LJ starts from its fcc lattice given
velocities at T = 1.2 (it melts within the first steps); mW from the supercooled melt
every mW metadynamics run starts from (``examples/mw/metad.lmp``: melted at 400 K, cooled
to 230 K at 1 atm, its velocities kept), held under the bias and the thermostat for
``SETTLE`` steps before NVE. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from latentcv.cv_models.engines import open_lammps
from latentcv.cv_models.native import paths
from latentcv.cv_models.system_file import metad_system
from latentcv.cv_models.systems import SYSTEMS, system_commands
from latentcv.cv_models.units import LAMMPS_UNIT_STYLES

# run_input and KB_KJ_PER_MOL_K are imported where mW uses them: their modules import torch,
# and torch loaded by Python before the plugin's libtorch changes the last bits of the CV
# (the chaotic LJ drift runs would no longer repeat, bit for bit, those of earlier tables)


@dataclass(frozen=True)
class Bench:
    """A system's defaults: the restrained output and its AT, the KAPPAs of the drift runs
    (PLUMED's energy unit per output unit squared), the atoms of the cost runs, the cells
    per edge of the drift box."""

    output: str
    at: float
    kappas: tuple[float, ...]
    strides: tuple[int, ...]
    atoms: int
    drift_cells: int


BENCH = {
    "lj": Bench("proj", 0.5, (200.0, 2000.0), (1, 2, SYSTEMS["lj"].bias_stride, 10, 20), 2048, 4),
    # n_crystal pulled from the melt (~1) towards 20 of the 216 molecules, an ice embryo,
    # KAPPA in kJ/mol per molecule^2: 0.3 pushes the melt with 6 kJ/mol per molecule of the
    # count, like the WT-METAD bias of `compare --system mw` (6-11 near the melt, curvature
    # up to 4.4); 3 with 10x that and the bias's largest curvature (10 blows up at STRIDE 1)
    "mw": Bench("n_crystal", 20.0, (0.3, 3.0), (SYSTEMS["mw"].bias_stride, 2, 5, 10), 1000, 3),
}
SETTLE = 500  # mW: steps under the bias and the thermostat before NVE (5 ps, 5 damping times)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a model file of the system (latentcv export)")
    ap.add_argument("--system", choices=sorted(BENCH), default="lj")
    ap.add_argument("--strides", type=int, nargs="+", help="bias STRIDEs (default: the system's, see BENCH)")
    ap.add_argument("--atoms", type=int, help="atoms of the cost runs (LJ 2048 = 4 n^3; mW 1000 = 8 n^3)")
    ap.add_argument("--cost-steps", type=int, default=200)
    ap.add_argument("--drift-chunks", type=int, default=100, help="drift runs: chunks of 20 steps")
    ap.add_argument("--output", help="the model output restrained (LJ proj, mW n_crystal)")
    ap.add_argument("--at", type=float, help="the RESTRAINT's AT (LJ 0.5, mW 20)")
    ap.add_argument(
        "--kappas", type=float, nargs="+", help="RESTRAINT KAPPAs of the drift runs (LJ 200 2000, mW 0.3 3)"
    )
    a = ap.parse_args()
    for name, value in vars(BENCH[a.system]).items():
        if name in vars(a) and getattr(a, name) is None:
            setattr(a, name, list(value) if isinstance(value, tuple) else value)
    return a


def plumed_dat(model: str, atoms: int, output: str, stride: int, kappa: float, at: float) -> str:
    """LATENT_CV on every atom and a RESTRAINT on ``output`` with STRIDE ``stride``."""
    return (
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={model} ATOMS=1-{atoms}\n"
        f"RESTRAINT ARG=cv.{output} AT={at} KAPPA={kappa} STRIDE={stride}\n"
    )


def write_melt(system: str, cells: int, path: Path) -> None:
    """The system's own supercooled melt (its ``metad.lmp`` up to the biased run, unbiased)
    as a LAMMPS restart file."""
    from latentcv.cv_models.generate import run_input

    target = metad_system(system, cells)
    variables = {**target.variables, "bias": "no", "steps": 0, "dump": f"{path}.dump"}
    lmp = open_lammps(["-nocite"], variables=variables)
    try:
        run_input(lmp, target.input_file)
        lmp.command(f"write_restart {path}")
    finally:
        lmp.close()


def start_commands(system: str, cells: int, folder: str) -> str:
    """LAMMPS commands building the start: the LJ fcc lattice at density 0.85; another
    system's melt (:func:`write_melt`, once per box, in ``folder``) read back."""
    if system == "lj":
        return system_commands("lj", cells, density=0.85)
    path = Path(folder) / f"{system}-{cells}.restart"
    if not path.exists():
        write_melt(system, cells, path)
    return f"variable resume index yes\nvariable restartfile index {path}\n" + system_commands(system, cells)


def instance(system: str, cells: int, dat: str | None, folder: str):
    """LAMMPS with the system's start of ``cells`` cells per edge (and ``fix plumed``)."""
    lmp = open_lammps(["-screen", "none", "-log", "none", "-nocite"], load_fix_plumed=dat is not None)
    lmp.commands_string(start_commands(system, cells, folder))
    if dat is not None:
        path = f"{folder}/plumed-{abs(hash(dat))}.dat"
        with open(path, "w") as f:
            f.write(dat)
        lmp.command(f"fix p all plumed plumedfile {path} outfile {path}.log")
        lmp.command("fix_modify p energy yes")
    return lmp


def start_nve(lmp, system: str, steps: int, settle: int = 0) -> None:
    """NVE for ``steps`` steps: LJ from velocities at T = 1.2; mW from its melt's own
    velocities, after ``settle`` steps under its thermostat (the bias settles in)."""
    s = SYSTEMS[system]
    if system == "lj":
        lmp.command("velocity all create 1.2 4928 mom yes rot yes dist gaussian")
    elif settle:
        lmp.commands_string(
            f"fix settle all nvt temp {s.temperature} {s.temperature} {s.tdamp}\nrun {settle}\nunfix settle"
        )
    lmp.commands_string(f"fix md all nve\nthermo_style custom step pe ke etotal\nthermo 100000\nrun {steps}")


def ms_per_step(system: str, cells: int, dat: str | None, steps: int, folder: str) -> float:
    lmp = instance(system, cells, dat, folder)
    start_nve(lmp, system, 20)
    t0 = time.perf_counter()
    lmp.command(f"run {steps} pre no post no")
    dt = time.perf_counter() - t0
    lmp.close()
    return 1000.0 * dt / steps


def energy_unit(system: str) -> tuple[float, str]:
    """(factor to the reported unit, its name): ε for LJ, kJ/mol for physical units."""
    kj = LAMMPS_UNIT_STYLES[SYSTEMS[system].units].kj_per_mol
    return (kj, "kJ/mol") if kj else (1.0, "ε")


def nve_drift(system: str, dat: str | None, folder: str, chunks: int = 100, chunk: int = 20) -> float:
    """Largest |E_total(t) - E_total(0)| per molecule over ``chunks`` x ``chunk`` steps of
    the drift box, in :func:`energy_unit` (inf: the run blew up)."""
    lmp = instance(system, BENCH[system].drift_cells, dat, folder)
    energies = []
    try:
        molecules = lmp.get_natoms() // SYSTEMS[system].atoms_per_molecule
        start_nve(lmp, system, 200, settle=SETTLE)
        for c in range(chunks):
            lmp.command(f"run {chunk} post no" + (" pre no" if c else ""))
            energies.append(lmp.get_thermo("etotal"))
    except Exception:  # noqa: BLE001 (LAMMPS raises a bare Exception: lost atoms)
        return float("inf")
    finally:
        lmp.close()
    e = np.array(energies)
    return float(np.abs(e - e[0]).max()) / molecules * energy_unit(system)[0]


def kt(system: str) -> float | None:
    """kT at the state point in the reported energy unit (None for LJ: reported in ε only)."""
    from latentcv.export.plumed_input import KB_KJ_PER_MOL_K

    return KB_KJ_PER_MOL_K * SYSTEMS[system].temperature if energy_unit(system)[1] == "kJ/mol" else None


def drift_cell(d: float, system: str) -> str:
    return f"{d:.1e}" if kt(system) is None or np.isinf(d) else f"{d:.1e} ({d / kt(system):.1e} kT)"


def caption(a: argparse.Namespace, atoms: int, drift_steps: int) -> str:
    s, unit, steps = SYSTEMS[a.system], energy_unit(a.system)[1], f"{drift_steps:,}".replace(",", " ")
    drift_box = metad_system(a.system, BENCH[a.system].drift_cells).n_molecules
    if a.system == "lj":
        start, what = f"LJ at dt = {s.dt} (the state point's), T = 1.2 NVE melt", "atom"
    else:
        start, what = f"{a.system} at dt = {s.dt:g} fs (the state point's), NVE from metad.lmp's melt", "molecule"
        start += f" at {s.temperature:g} K after {SETTLE} steps under bias and thermostat"
        unit += f", and in kT = {kt(a.system):.3f} kJ/mol at {s.temperature:g} K"
    return (
        f"{start}, 1 thread; model {a.model}, RESTRAINT on cv.{a.output} at {a.at:g}; cost at {atoms} {what}s, "
        f"drift at {drift_box} {what}s over {steps} steps (largest excursion of kinetic + potential + bias "
        f"energy per {what}, in {unit}; inf: the run blew up)\n"
    )


def table(a: argparse.Namespace, plain_ms: float, plain_drift: float, rows: list) -> None:
    head = " | ".join(f"drift, KAPPA {k:g}" for k in a.kappas)
    print(f"| bias STRIDE | ms/step | biased / plain | {head} |")
    print("|---|---|---|" + "---|" * len(a.kappas))
    plain = " | ".join(drift_cell(plain_drift, a.system) for _ in a.kappas)
    print(f"| plain MD | {plain_ms:.3f} | 1.0 | {plain} |")
    for k, cost, drifts in rows:
        cells = " | ".join(drift_cell(d, a.system) for d in drifts)
        print(f"| {k} | {cost:.2f} | {cost / plain_ms:.1f} | {cells} |")


def measure(a: argparse.Namespace, cells: int, folder: str) -> tuple[float, float, list]:
    """(plain ms/step, plain drift, [(stride, ms/step, [drift per KAPPA])])."""
    atoms = metad_system(a.system, cells).n_atoms
    drift_atoms = metad_system(a.system, BENCH[a.system].drift_cells).n_atoms
    per = "atom" if a.system == "lj" else "molecule"
    plain_ms = ms_per_step(a.system, cells, None, a.cost_steps * 5, folder)
    plain_drift = nve_drift(a.system, None, folder, a.drift_chunks)
    rows = []
    for k in a.strides:
        dat = plumed_dat(a.model, atoms, a.output, k, 1.0, a.at)
        cost = ms_per_step(a.system, cells, dat, a.cost_steps, folder)
        dats = [plumed_dat(a.model, drift_atoms, a.output, k, kappa, a.at) for kappa in a.kappas]
        drifts = [nve_drift(a.system, dat, folder, a.drift_chunks) for dat in dats]
        rows.append((k, cost, drifts))
        print(f"bias_stride: STRIDE {k}: {cost:.2f} ms/step, drifts {drifts} per {per}", flush=True)
    return plain_ms, plain_drift, rows


def main() -> None:
    import tempfile

    a = parse_args()
    spec = SYSTEMS[a.system]
    cells = round((a.atoms / (spec.molecules_per_cell * spec.atoms_per_molecule)) ** (1 / 3))
    with tempfile.TemporaryDirectory() as folder:
        plain_ms, plain_drift, rows = measure(a, cells, folder)
    print("\n" + caption(a, metad_system(a.system, cells).n_atoms, 20 * a.drift_chunks))
    table(a, plain_ms, plain_drift, rows)


if __name__ == "__main__":
    main()
