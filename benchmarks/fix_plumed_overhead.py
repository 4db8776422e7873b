"""Cost of `fix plumed` itself per MD step: LAMMPS LJ without the fix, and with the fix and a
trivial PLUMED input (one DISTANCE and a RESTRAINT), so that the fix's own work (gathering
atoms, its per-step checks) is what differs. Several plugin builds can be compared side by
side (e.g. this checkout's against an older commit's), interleaved over repeats.

    .venv/bin/python benchmarks/fix_plumed_overhead.py [--atoms 2048] [--steps 2000]
        [--repeats 5] [--plugin NAME=PATH ...]

Prints the median ms/step of each variant and its ratio to plain MD (the machine is shared
and noisy: compare the ratios, not absolute times).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from latentcv.cv_models.native import paths
from latentcv.cv_models.systems import system_commands

PLUMED = "d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=1.0 KAPPA=1.0\n"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, default=2048, help="LJ atoms (4 n^3)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a fixplumedplugin.so to compare (default: this checkout's)",
    )
    return ap.parse_args()


def script(n_cells: int, steps: int, plugin: Path | None) -> str:
    text = (
        system_commands("lj", n_cells, density=0.9)
        + "velocity all create 0.7 4 mom yes rot no\nfix md all nve\nthermo 100000\n"
    )
    if plugin is not None:
        text += f"plugin load {plugin}\nfix p all plumed plumedfile plumed.dat outfile plumed.log\n"
    return text + f"run {steps}\n"


def ms_per_step(workdir: Path, text: str, steps: int) -> float:
    (workdir / "in.lmp").write_text(text)
    env = {
        **os.environ,
        "LAMMPS_PLUGIN_PATH": str(workdir / "no-plugins"),
        "PLUMED_KERNEL": str(paths.plumed_kernel_path()),
    }
    out = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "none"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loop = re.findall(r"Loop time of (\S+) on \d+ procs for (\d+) steps", out)[-1]
    return 1000.0 * float(loop[0]) / int(loop[1])


def main() -> None:
    args = parse_args()
    n_cells = round((args.atoms / 4) ** (1 / 3))
    variants: dict[str, Path | None] = {"plain MD": None}
    for item in args.plugin or [f"this checkout={paths.lammps_plugin_path()}"]:
        name, _, path = item.partition("=")
        variants[name] = Path(path).resolve()
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="latentcv-fix-overhead-") as tmp:
        work = Path(tmp)
        (work / "no-plugins").mkdir()
        (work / "plumed.dat").write_text(PLUMED)
        for _ in range(args.repeats):
            for name, plugin in variants.items():
                times[name].append(ms_per_step(work, script(n_cells, args.steps, plugin), args.steps))
    plain = statistics.median(times["plain MD"])
    print(f"{4 * n_cells**3} LJ atoms, {args.steps} steps, median of {args.repeats} (interleaved)")
    print(f"{'variant':<24} {'ms/step':>9} {'x plain':>8}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<24} {med:9.3f} {med / plain:8.2f}")


if __name__ == "__main__":
    main()
