"""How much of the crystal's alignment the liquid of an interface run keeps, per melting length.

The interface protocol (``examples/<system>/interface.lmp`` through ``latentcv generate``'s
``interface`` runs) freezes a crystal seed, melts the rest of the equilibrated crystal for
``melt`` steps at the file's ``tmelt``, cools it for as many, relaxes the whole box 100
steps and samples. For each ``--melt-steps`` value this runs that protocol with ONE small
spherical seed at the state point (``GeneratorConfig.interface_melt_steps``), and a plain
melt run of the same size (``melt.lmp``, the reference liquid); then reads, at the first
and the last sampled frame, the molecules whose centres lie more than ``--far`` σ from the
seed's centre (the box centre, which ``fix npt`` keeps in place; minimum image): their
nematic order S (about 1.5/√M for M random axes) and their share judged crystalline by the
system's judge (trimers: local P2 > 0.5 within the cutoff). A liquid that has lost the
crystal's alignment reads like the melt run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interface_melt.py [--system trimers] \\
        [--cells 8] [--melt-steps 1000 4000] [--share 0.01] [--steps 1000] [--every 500] \\
        [--far 5.0] [--replicas 1] [--out /tmp/interface_melt]

Box: ``cells``³ lattice cells (trimers 8: 4 096 molecules, 12 288 atoms; 4: 512), like the
seeded runs of benchmarks/nucleus_sizes.py. Prints a markdown table, one row per run
(wall s: generating all runs of that melting length, 0 when read back from ``--out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nucleus_sizes import melt_run_config  # benchmarks/nucleus_sizes.py

from latentcv.cv_models.analysis.crystallinity import crystalline_molecules
from latentcv.cv_models.analysis.orientation import molecule_axes, nematic_order
from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.data.lammps_reader import iter_lammps_dump
from latentcv.cv_models.data.molecules import frame_centers
from latentcv.cv_models.data.pbc import minimum_image
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", choices=["dimers", "trimers"], default="trimers", help="a system of rods")
    ap.add_argument("--cells", type=int, default=8, help="lattice cells per edge (trimers 8: 4 096 molecules)")
    ap.add_argument("--melt-steps", type=int, nargs="+", default=[1000, 4000], help="interface melting steps")
    ap.add_argument("--share", type=float, default=0.01, help="the spherical seed's share of the box volume")
    ap.add_argument("--steps", type=int, default=1000, help="sampled steps per run")
    ap.add_argument("--every", type=int, default=500, help="dump stride (steps)")
    ap.add_argument("--far", type=float, default=5.0, help="read molecules farther than this from the seed (σ)")
    ap.add_argument("--replicas", type=int, default=1, help="seeded runs per melting length (seeds 1, 2, ...)")
    ap.add_argument("--ref-melt-steps", type=int, default=4000, help="melting, then quench, steps of the melt run")
    ap.add_argument("--out", default="/tmp/interface_melt")
    return ap.parse_args()


def box_centres(dump: Path) -> list[np.ndarray]:
    """[3] centre of the box (σ) at every frame of a LAMMPS dump."""
    return [f.origin + 0.5 * f.cell.sum(axis=0) for f in iter_lammps_dump(dump)]


def far_reading(
    frame: Frame, centre: np.ndarray, far: float, criterion: str, cutoff: float
) -> tuple[int, float, float]:
    """(molecules farther than ``far`` σ from ``centre``, their nematic S, their crystalline share)."""
    d = np.linalg.norm(minimum_image(frame_centers(frame) - centre, frame.cell), axis=1)
    keep = d > far
    s, _ = nematic_order(molecule_axes(frame)[keep])
    crystalline = crystalline_molecules(frame, criterion, cutoff)[keep]
    return int(keep.sum()), s, float(crystalline.mean())


def seeded_config(a: argparse.Namespace, melt_steps: int) -> GeneratorConfig:
    """The interface runs of one melting length: one spherical seed at the state point."""
    spec = SYSTEMS[a.system]
    return GeneratorConfig(
        system=a.system,
        n_cells=a.cells,
        phases=("interface",),
        replicas=a.replicas,
        interface_seeds=(("sphere", a.share, spec.temperature),),
        interface_ncz=a.cells,
        interface_steps=a.steps,
        interface_every=a.every,
        interface_melt_steps=melt_steps,
    )


def melt_config(a: argparse.Namespace) -> GeneratorConfig:
    """The reference: a plain melt run of the same box (``melt.lmp``)."""
    return melt_run_config(a.system, a.cells, a.steps, a.every, a.ref_melt_steps)


def readings(cfg: GeneratorConfig, out: Path, far: float) -> list[tuple[str, list[tuple[int, float, float]]]]:
    """Per trajectory of ``cfg`` (run into ``out``): the far readings of its first and last frame."""
    spec = cfg.spec
    rows = []
    for name, frames in generate(cfg, out, progress=False, reuse=True).by_trajectory().items():
        centres = box_centres(out / f"{name}.dump")
        ends = [(frames[0], centres[0]), (frames[-1], centres[-1])]
        rows.append((name, [far_reading(f, c, far, spec.crystal_criterion, spec.tenwolde_cutoff) for f, c in ends]))
    return rows


def main() -> None:
    a = parse_args()
    spec = SYSTEMS[a.system]
    root = Path(a.out) / f"{a.system}-cells{a.cells}"
    print(
        f"{a.system}, {spec.n_molecules(a.cells)} molecules, sphere seed share {a.share:g} at T = "
        f"{spec.temperature:g}; molecules > {a.far:g} σ from the seed, first / last frame "
        f"({a.steps} sampled steps)\n"
    )
    print("| run | melting steps | far molecules | S first | S last | crystalline first | crystalline last | wall s |")
    print("|---" * 8 + "|")
    jobs = [(m, seeded_config(a, m), root / f"melt{m}") for m in a.melt_steps]
    jobs.append((a.ref_melt_steps, melt_config(a), root / "melt_run"))
    for melt_steps, cfg, out in jobs:
        began = time.perf_counter()
        rows = readings(cfg, out, a.far)
        wall = time.perf_counter() - began
        for name, ((n, s0, c0), (_, s1, c1)) in rows:
            print(
                f"| {name} | {melt_steps} | {n} | {s0:.3f} | {s1:.3f} | {c0:.3f} | {c1:.3f} | {wall:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
