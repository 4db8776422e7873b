"""Does `make demo` crystallise reliably? The demo's metadynamics over velocity seeds
(benchmark, not a test).

Prepares (or reuses) the demo's data, training and export in ``--out``, then runs the
demo's biased metadynamics for each seed (``--workers`` LAMMPS processes at once) and
the unbiased control for the first ``--controls`` seeds, and judges each run with freud's
ten Wolde solid fraction (> 0.8 held 5 000 steps), independently of the CV.

    .venv/bin/python benchmarks/demo_seeds.py [--out demo_out] [--seeds 1 2 3 4 5]

Prints a markdown table (per seed: crystallised at step, wall time, ms/step; the control)
and the fraction of seeds that crystallised within the demo's budget.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from latentcv.cv_models.systems import METAD_DEFAULTS


def one_run(args: tuple) -> dict:
    out, seed, biased = args
    from latentcv.cv_models.app.demo import DemoConfig, metad_config
    from latentcv.cv_models.app.metad_run import run_metadynamics

    cfg = replace(DemoConfig(), seed=seed, progress=False)
    md = out / "seeds" / f"{'metad' if biased else 'control'}-{seed}"
    run = run_metadynamics(metad_config(out, out / "model.pt", cfg, biased=biased, folder=md))
    return {
        "seed": seed,
        "biased": biased,
        "crystallised_at": run.crystallised_at,
        "seconds": run.seconds,
        "steps_run": run.steps_run,
        "ms_per_step": run.ms_per_step,
        "max_solid_fraction": run.max_fraction,
        "wall_s_to_crystal": run.wall_s_to_crystal,
    }


def main() -> None:
    from latentcv.cv_models.app.demo import DemoConfig, export_model, prepare_data, train_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_out")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--controls", type=int, default=2, help="unbiased controls for the first N seeds")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    out = Path(a.out).resolve()
    cfg = DemoConfig()
    npz, fingerprint = prepare_data(out, cfg)
    export_model(out, train_model(out, npz, fingerprint))
    jobs = [(out, s, True) for s in a.seeds] + [(out, s, False) for s in a.seeds[: a.controls]]
    with ProcessPoolExecutor(max_workers=a.workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(one_run, jobs))
    (out / "seeds" / "results.json").write_text(json.dumps(results, indent=1))
    print(
        f"\nmake demo's metadynamics ({cfg.md_steps} steps, 256 LJ atoms, T = 0.58, WT-METAD on cv.{cfg.cv}, "
        f"PACE {cfg.pace}, HEIGHT 1 kT, BIASFACTOR {cfg.biasfactor:g}, bias STRIDE {METAD_DEFAULTS.bias_stride}); "
        "crystallised = freud ten Wolde solid "
        f"fraction > {cfg.crystal_threshold} held {cfg.hold_steps} steps\n"
    )
    print("| run | seed | crystallised at step | wall s to crystal | ms/step | max solid fraction |")
    print("|---|---|---|---|---|---|")
    for r in results:
        step = "never" if r["crystallised_at"] is None else str(r["crystallised_at"])
        wall = "–" if r["wall_s_to_crystal"] is None else f"{r['wall_s_to_crystal']:.0f}"
        print(
            f"| {'biased' if r['biased'] else 'unbiased'} | {r['seed']} | {step} | {wall} | {r['ms_per_step']:.2f} | "
            f"{r['max_solid_fraction']:.2f} |"
        )
    biased = [r for r in results if r["biased"]]
    hits = [r["crystallised_at"] for r in biased if r["crystallised_at"] is not None]
    print(
        f"\nbiased: {len(hits)}/{len(biased)} seeds crystallised within {cfg.md_steps} steps"
        + (f", median step {int(np.median(hits))}" if hits else "")
    )


if __name__ == "__main__":
    main()
