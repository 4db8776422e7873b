"""Did the bias grow one nucleus, or order scattered through the box? (benchmark)

For every finished run of ``latentcv compare`` folders, from the frames the runs kept:
the largest judged share (crystalline molecules by the system's judge / all), the largest
crystalline cluster (the same judge's molecules joined within the system's
``cluster_link``, as ``latentcv fes`` counts the nucleus), the highest value of the biased
CV and the highest bias (kT). A run whose judged share rises while its largest cluster
stays at a few molecules was pushed into scattered crystal-like order, not a nucleus.

    .venv/bin/python benchmarks/run_nuclei.py FOLDER [FOLDER ...] [--runs "latent-seed*"]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from latentcv.cv_models.app.nucleation_report import energy_scale, largest_cluster_sizes, run_config
from latentcv.cv_models.data.plumed_table import read_plumed_table


def run_row(run: Path) -> str:
    """One table row of a finished run folder."""
    result = json.loads((run / "result.json").read_text())
    cfg = run_config(run)
    steps, largest, _ = largest_cluster_sizes(run / "traj.dump", cfg.target, cfg.q6_cutoff)
    colvar = read_plumed_table(run / "COLVAR").data
    kt, _ = energy_scale(cfg.target, cfg.temp)
    crystallised = result.get("crystallised_at")
    ended = "never" if crystallised is None else crystallised
    if result.get("blew_up"):  # compare records a blown-up run without its judged frames
        ended = f"never (blew up at step {result['steps_run']})"
    share = f"{max(result['solid_fraction']):.2f}" if result["solid_fraction"] else "–"
    p50, p90 = np.percentile(largest, [50, 90])
    return (
        f"| {run.parent.parent.name}/{run.name} | {ended} | "
        f"{result['steps_run']} | {share} | {largest.max():.0f} (step {steps[largest.argmax()]}) | "
        f"{p50:.0f} / {p90:.0f} | {colvar[:, 1].max():.4g} | {colvar[:, 2].max() / kt:.0f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="latentcv compare output folders (read only)")
    ap.add_argument("--runs", default="*-seed*", help="run folders, a glob in <folder>/runs")
    args = ap.parse_args()
    print(
        "| run | crystallised at | steps run | largest judged share | largest cluster (molecules) | "
        "largest cluster, median / 90th percentile over frames | highest biased CV | highest bias (kT) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for folder in args.folders:
        for run in sorted(Path(folder, "runs").glob(args.runs)):
            if (run / "result.json").exists():
                print(run_row(run), flush=True)


if __name__ == "__main__":
    main()
