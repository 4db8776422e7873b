"""Which crystal the biased runs of ``latentcv compare`` made: the structure types of each
run's frame at crystallisation and its last frame, by OVITO (polyhedral template matching
and adaptive common-neighbour analysis, two independent structure-type judges), the
number of grains (OVITO's grain segmentation, grains of ≥ 5 % of the atoms) and freud's
ten Wolde solid fraction; with ``--relax N``, also the PTM types after N unbiased NPT steps
from the last frame (what the bias left, relaxed: a crystal stays one and anneals, a
bias-made disorder melts), and the PTM types of a thermal fcc crystal of the same size and
state point (the reference: PTM's reading of the target crystal itself). LJ runs (units
lj). Needs OVITO (``make bench-deps``).

    .venv/bin/python benchmarks/final_structures.py /tmp/cmp2048/cmp_ncrystal_wide_long [more folders] [--relax 20000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentcv.cv_models.analysis.crystallinity import freud_solid_fraction, ovito_data, ovito_structures
from latentcv.cv_models.data import read_lammps_dump

TYPES = ("fcc", "hcp", "bcc", "ico", "other")


def cna_and_grains(frame) -> tuple[dict[str, float], int]:
    """Adaptive CNA fractions and the number of grains holding ≥ 5 % of the atoms."""
    from ovito.modifiers import (
        CommonNeighborAnalysisModifier,
        GrainSegmentationModifier,
        PolyhedralTemplateMatchingModifier,
    )

    data = ovito_data(frame)
    data.apply(CommonNeighborAnalysisModifier())
    n = frame.n_atoms
    cna = {k: data.attributes[f"CommonNeighborAnalysis.counts.{k.upper()}"] / n for k in TYPES[:4]}
    cna["other"] = 1.0 - sum(cna.values())
    grains = ovito_data(frame)
    grains.apply(PolyhedralTemplateMatchingModifier(output_orientation=True))
    grains.apply(GrainSegmentationModifier(min_grain_size=max(int(0.05 * n), 2)))
    return cna, int(grains.attributes["GrainSegmentation.grain_count"])


def relaxed(frame, steps: int, temp: float = 0.58, press: float = 1.0):
    """The frame after ``steps`` unbiased NPT steps of the LJ system (T, P reduced)."""
    import tempfile

    import numpy as np

    from latentcv.cv_models.data.frames import Frame
    from latentcv.cv_models.data.writers import write_lammps_data
    from latentcv.cv_models.engines import open_lammps

    with tempfile.TemporaryDirectory() as tmp:
        write_lammps_data(Path(tmp) / "frame.data", frame)
        lmp = open_lammps(["-log", "none"])
        try:
            for line in (
                "units lj",
                "atom_style bond",
                f"read_data {Path(tmp) / 'frame.data'}",
                "pair_style lj/cut 2.5",
                "pair_coeff 1 1 1.0 1.0",
                "pair_modify shift yes",
                "neighbor 0.3 bin",
                "timestep 0.005",
                f"velocity all create {temp} 4242 mom yes rot yes dist gaussian",
                f"fix md all npt temp {temp} {temp} 0.5 iso {press} {press} 5.0",
                f"run {steps}",
            ):
                lmp.command(line)
            x = np.array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3)
            lo, hi = np.array(lmp.extract_box()[0]), np.array(lmp.extract_box()[1])
        finally:
            lmp.close()
    n = len(x)
    return Frame(x - lo, np.diag(hi - lo), np.arange(n), np.zeros(n, np.int64))


def thermal_fcc(cells: int, steps: int):
    """A thermal fcc crystal of 4 cells³ atoms at the LJ state point (T = 0.58, P = 1)."""
    import numpy as np

    from latentcv.cv_models.data.frames import Frame
    from latentcv.cv_models.synthetic import fcc_positions

    x, cell = fcc_positions(cells, (4 / 0.97) ** (1 / 3))
    return relaxed(Frame(x, cell, np.arange(len(x)), np.zeros(len(x), np.int64)), steps)


def row(run: Path, relax: int) -> str | None:
    """The markdown row of one run (None: not finished)."""
    result = run / "result.json"
    if not result.exists():
        return None
    r = json.loads(result.read_text())
    frames = read_lammps_dump(run / "traj.dump", units="lj")
    at = r["crystallised_at"]
    first = next((f for f in frames if at is not None and f.timestep >= at), None)
    last = frames[-1]
    pct = lambda d: "/".join(f"{100 * d[k]:.0f}" for k in TYPES)  # noqa: E731
    ptm_last = ovito_structures(last)
    cna_last, grains = cna_and_grains(last)
    ptm_first = pct(ovito_structures(first)) if first is not None else "–"
    after = pct(ovito_structures(relaxed(last, relax))) if relax else "–"
    return (
        f"| {run.name} | {'never' if at is None else at} | {last.timestep} | {ptm_first} | {pct(ptm_last)} | "
        f"{pct(cna_last)} | {grains} | {freud_solid_fraction(last, 1.5):.2f} | {after} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="latentcv compare output folders")
    ap.add_argument("--relax", type=int, default=0, help="unbiased NPT steps from the last frame (0: none)")
    args = ap.parse_args()
    print(
        "| run | crystallised at | last frame | PTM at crystallisation (fcc/hcp/bcc/ico/other %) | "
        f"PTM last frame | adaptive CNA last frame | grains (≥ 5 %) | ten Wolde solid, last frame | "
        f"PTM after {args.relax} unbiased steps |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for folder in args.folders:
        print(f"| **{Path(folder).name}** | | | | | | | | |")
        for run in sorted((Path(folder) / "runs").iterdir()):
            line = row(run, args.relax)
            if line:
                print(line)
    if args.relax:
        ref = thermal_fcc(8, args.relax)
        print(f"\nthermal fcc crystal, 2 048 atoms, {args.relax} NPT steps at T = 0.58, P = 1: PTM ", end="")
        print("/".join(f"{100 * v:.0f}" for v in ovito_structures(ref).values()), "% (fcc/hcp/bcc/ico/other)")


if __name__ == "__main__":
    main()
