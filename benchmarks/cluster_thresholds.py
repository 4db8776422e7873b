"""The solid-likeness threshold of PLUMED's largest-cluster CV, per system (benchmark).

`latentcv compare --cvs cluster` calls a molecule solid-like when its LOCAL_Q6 (the sum
over neighbours of the aligned q6 vectors, on molecule centres for molecules) passes the
CUBIC switch ``SystemSpec.cluster_solid_q6``. This prints LOCAL_Q6 in the crystal and the
melt at the state point, as `plumed driver` computes it from compare's own PLUMED lines,
and the share of molecules above several thresholds, so that the switch sits between the
phases. Frames: short crystal and melt runs of the generator's tiny preset (cached in
``--work``).

    .venv/bin/python benchmarks/cluster_thresholds.py --system trimers [--cells 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from latentcv.cv_models.app.compare import CompareConfig, _q6_action, _q6_lines
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.data.frames import CRYSTAL, MELT, Frame
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.native import paths


def phase_frames(system: str, cells: int, work: Path) -> list[Frame]:
    """Crystal and melt frames at the state point (generated once into ``work``)."""
    from latentcv.cv_models.generate import GeneratorConfig, generate

    path = work / f"{system}{cells}.npz"
    if path.exists():
        return list(Dataset.load(path))
    steps = dict(melt_steps=3000, quench_steps=2000, equil_steps=4000, prod_steps=10000, dump_every=1000)
    cfg = GeneratorConfig.preset("tiny", system, n_cells=cells, phases=("crystal", "melt"), chunk_steps=0, **steps)
    ds = generate(cfg, work / f"{system}{cells}")
    ds.save(path)
    return list(ds)


def local_q6(cfg: CompareConfig, frames: list[Frame], work: Path) -> np.ndarray:
    """[frames, molecules] LOCAL_Q6 by `plumed driver` with compare's lines (lengths in σ
    for reduced units, else converted from Å to PLUMED's nm, as compare's switch)."""
    natoms = len(frames[0].positions)
    scale = 1.0 if cfg.target.units == "lj" else 0.1
    lines, species, switch = _q6_lines(cfg, natoms)
    lines += [_q6_action(species, switch, vmean=False), f"lq6: LOCAL_Q6 SPECIES=q6 SWITCH={{{switch}}}"]
    (work / "plumed.dat").write_text("\n".join(lines + ["PRINT ARG=lq6 FILE=lq6.dat FMT=%.6f"]) + "\n")
    with open(work / "traj.xyz", "w") as f:
        for fr in frames:
            f.write(f"{natoms}\n" + " ".join(f"{x:.10f}" for x in scale * fr.cell.reshape(-1)) + "\n")
            f.writelines(f"X {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}\n" for p in scale * fr.positions)
    cmd = [str(paths.plumed_executable()), "driver", "--plumed", "plumed.dat", "--ixyz", "traj.xyz"]
    subprocess.run(cmd, cwd=work, env=paths.plumed_environment(), check=True, capture_output=True)
    return read_plumed_table(work / "lq6.dat").data[:, 1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", default="trimers")
    ap.add_argument("--cells", type=int, default=3)
    ap.add_argument("--work", default="", help="folder for the runs (default: temporary)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="latentcv-lq6-"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = CompareConfig(system=args.system, cells=args.cells, cvs=("cluster",)).validate()
    frames = phase_frames(args.system, args.cells, work)
    low, high = cfg.cluster_solid_q6
    print(
        f"{args.system}, {cfg.n_molecules} molecules at T = {cfg.temp:g}; LOCAL_Q6 over `{_q6_lines(cfg, cfg.n_atoms)[2]}`"
    )
    print(f"compare's solid-like switch (SystemSpec.cluster_solid_q6): CUBIC {low:g} -> {high:g}\n")
    thresholds = sorted({1.0, 2.0, low, 0.5 * (low + high), high, 5.0, 7.0})
    print(
        "| phase | frames | LOCAL_Q6 5th / 50th / 95th percentile | "
        + " | ".join(f"> {t:g}" for t in thresholds)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(thresholds))
    for label, name in ((CRYSTAL, "crystal"), (MELT, "melt")):
        chosen = [f for f in frames if f.label == label]
        sub = work / name
        sub.mkdir(exist_ok=True)
        q = local_q6(cfg, chosen, sub)
        pct = " / ".join(f"{v:.2f}" for v in np.percentile(q, [5, 50, 95]))
        shares = " | ".join(f"{(q > t).mean():.3f}" for t in thresholds)
        print(f"| {name} | {len(chosen)} | {pct} | {shares} |")


if __name__ == "__main__":
    main()
