"""How an exported model reads the unbiased melt and crystal at a compare box size.

Per-molecule labels must not fire by chance in the melt: this runs, at the size of
``latentcv compare --system SYSTEM --cells N``,

- compare's own calibration run (:func:`latentcv.cv_models.app.compare.calibrate` with
  compare's defaults and ``--cvs latent``: the melt every metadynamics run starts from,
  5 000 unbiased steps, a frame every 500; it also records the latent SIGMA, reused by a
  later ``latentcv compare ... --cvs latent --out <out>/compare`` of the same settings);
- the generator's crystal and melt runs at the state point (``examples/<system>/crystal.lmp``,
  ``melt.lmp``; 2 replicas, 20 000 production steps, a frame every 500);

and prints per run ``n_crystal`` and ``n_nucleus`` (mean ± std over frames, C++ core as
``latentcv eval``), the head's positives (share of molecules with p > 0.5), the median
per-molecule logit, the training labels' share (``examples/<system>/train.toml``) and
compare's judge (its crystallised criterion). LAMMPS runs are cached in ``--out``.

    .venv/bin/python benchmarks/melt_readings.py --system trimers --model trimers_out/model.pt --cells 4
    .venv/bin/python benchmarks/melt_readings.py --system dimers --model dimers_out/model.pt --cells 6
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import numpy as np

from latentcv.cv_models.analysis.labels import LabelConfig, crystal_molecules
from latentcv.cv_models.app.compare import CompareConfig, calibrate
from latentcv.cv_models.app.evaluate import evaluate_frames, molecule_outputs
from latentcv.cv_models.app.metad_run import crystal_fraction, judge_name
from latentcv.cv_models.data.readers import read_trajectory
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def readings(system: str, model: str, dump: Path) -> dict:
    """One run's frames read by the model, the training labels and compare's judge."""
    spec = SYSTEMS[system]
    data = tomllib.loads((EXAMPLES / system / "train.toml").read_text())["data"]
    labels = LabelConfig(
        criterion=data["molecule_labels"], cutoff=data["label_cutoff"], neighbours=data.get("label_neighbours", 12)
    )
    frames = read_trajectory(dump, atoms_per_molecule=spec.atoms_per_molecule, units=spec.units)
    ev = evaluate_frames(model, frames, progress=False)
    values = {n: ev.values[:, k] for k, n in enumerate(ev.names)}
    p = np.stack([per[:, 0] for per, _ in molecule_outputs(model, frames)])
    if not np.allclose(p.sum(1), values["n_crystal"], rtol=1e-6, atol=1e-6 * p.shape[1]):
        raise RuntimeError(f"{dump}: per-molecule p does not sum to n_crystal")
    logit = np.log(np.clip(p, 1e-300, None)) - np.log(np.clip(1 - p, 1e-300, None))
    return {
        "frames": len(frames),
        "molecules": p.shape[1],
        "n_crystal": values["n_crystal"],
        "n_nucleus": values.get("n_nucleus", np.full(len(frames), np.nan)),
        "head": float((p > 0.5).mean()),
        "logit": float(np.median(logit)),
        "labels": float(np.mean([crystal_molecules(f, labels).mean() for f in frames])),
        "judge": np.array([crystal_fraction(f, system, spec.tenwolde_cutoff) for f in frames]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", choices=("trimers", "dimers"), required=True)
    p.add_argument("--model", required=True, help="exported model (latentcv export, benchmarks/molecular_cv.py)")
    p.add_argument("--cells", type=int, required=True, help="compare's --cells")
    p.add_argument("--out", type=Path, default=None, help="LAMMPS runs (default: <model folder>/cells<N>)")
    p.add_argument("--prod", type=int, default=20000, help="production steps of the generator runs")
    a = p.parse_args()
    out = a.out or Path(a.model).resolve().parent / f"cells{a.cells}"
    spec = SYSTEMS[a.system]
    t0 = time.time()
    cfg = CompareConfig(
        model=str(Path(a.model).resolve()), system=a.system, cells=a.cells, cvs=("latent",), out=str(out / "compare")
    )
    sigma = calibrate(cfg.validate())["latent"]
    t1 = time.time()
    gen = GeneratorConfig(
        system=a.system,
        n_cells=a.cells,
        phases=("crystal", "melt"),
        replicas=2,
        equil_steps=2000,
        prod_steps=a.prod,
        dump_every=500,
        melt_steps=3000,
        quench_steps=2000,
        chunk_steps=0,
    )
    generate(gen, out / "runs", reuse=True, progress=False)
    t2 = time.time()
    runs = {"melt, compare's calibration run": out / "compare" / "calibration" / "traj.dump"}
    runs.update(
        {f"{ph} {r}": out / "runs" / f"{a.system}-{ph}-{r}.dump" for ph in ("melt", "crystal") for r in range(2)}
    )
    rows = []
    for name, dump in runs.items():
        r = readings(a.system, cfg.model, dump)
        m = r["molecules"]
        rows.append(
            f"| {name} | {r['frames']} | {r['n_crystal'].mean():.2f} ± {r['n_crystal'].std():.2f} "
            f"(max {r['n_crystal'].max():.1f}) | {r['n_nucleus'].mean():.2f} ± {r['n_nucleus'].std():.2f} "
            f"| {100 * r['head']:.3f} | {r['logit']:.1f} | {100 * r['labels']:.3f} "
            f"| {100 * r['judge'].mean():.2f} (max {100 * r['judge'].max():.2f}) |"
        )
    t3 = time.time()
    print(
        f"{a.system}: {m} molecules (compare --cells {a.cells}), T = {spec.temperature}, model {cfg.model}; "
        f"compare's latent SIGMA = {sigma:.4g} (4 x its std in the calibration melt)\n"
    )
    print(
        "| run | frames | n_crystal | n_nucleus | head p > 0.5 % | median logit | labels % (train.toml) "
        f"| judge % ({judge_name(a.system)}) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nwall: calibration {t1 - t0:.0f} s, generator runs {t2 - t1:.0f} s, readings {t3 - t2:.0f} s (one core)")


if __name__ == "__main__":
    main()
