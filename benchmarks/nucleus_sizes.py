"""Shape of ``n_nucleus``, ``n_largest`` and ``n_crystal`` at the box sizes users simulate: LJ melts with
spherical crystalline seeds of several sizes, at 256, 2 048 and 8 788 atoms (issue 21,
item 2), against the independent largest ten Wolde cluster (freud).

For each box size it generates (``latentcv generate``'s interface runs, cubic boxes) one
run per seed size, the sphere growing or melting at the state point, and melt runs; then
evaluates a trained model on every dumped frame and prints, per size: Spearman(output,
n_max), the mean absolute error in molecules, and the melt's mean ± std (flat in N?).

    .venv/bin/python benchmarks/nucleus_sizes.py --checkpoint demo_out/train/checkpoint.pt \\
        [--cells 4 8 13] [--shares 0.01 0.03 0.08 0.2 0.4] [--out /tmp/nucleus_sizes]

(seeds of fewer than 20 atoms are left out: at 256 atoms the 1 % share.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from nucleus_shape import outputs  # benchmarks/nucleus_shape.py
from scipy.stats import spearmanr

from latentcv.cv_models.analysis.crystallinity import freud_largest_cluster
from latentcv.cv_models.checkpoint import load_encoder
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cells", type=int, nargs="+", default=[4, 8, 13], help="fcc cells per edge (4 n^3 atoms)")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.01, 0.03, 0.08, 0.2, 0.4])
    ap.add_argument("--temp", type=float, default=0.0, help="temperature of the seeded runs (default: state point)")
    ap.add_argument("--steps", type=int, default=2000, help="sampled steps per seeded run")
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--cutoff", type=float, default=1.5, help="ten Wolde cutoff (σ)")
    ap.add_argument("--out", default="/tmp/nucleus_sizes")
    return ap.parse_args()


def frames_of_size(a: argparse.Namespace, cells: int) -> tuple[list, list]:
    """(seeded frames, melt frames) of a cubic box of ``cells``³ fcc cells."""
    t = a.temp or SYSTEMS["lj"].temperature
    shares = [share for share in a.shares if share * 4 * cells**3 >= 20]  # a seed of >= 20 atoms
    seeded = GeneratorConfig(
        system="lj",
        n_cells=cells,
        phases=("interface",),
        interface_seeds=tuple(("sphere", share, t) for share in shares),
        interface_ncz=cells,
        interface_steps=a.steps,
        interface_every=a.every,
    )
    melt = GeneratorConfig(
        system="lj", n_cells=cells, phases=("melt",), equil_steps=1000, prod_steps=a.steps, dump_every=a.every
    )
    root = Path(a.out) / f"cells{cells}"
    return list(generate(seeded, root / "seeded", reuse=True)), list(generate(melt, root / "melt", reuse=True))


def main() -> None:
    a = parse_args()
    encoder = load_encoder(a.checkpoint).double()
    print(
        "| atoms | seeded frames | n_max range | Spearman n_nucleus | MAE | Spearman n_largest | MAE | "
        "Spearman n_crystal | MAE | melt n_nucleus | melt n_largest | melt n_crystal | melt n_max |"
    )
    print("|---" * 13 + "|")
    for cells in a.cells:
        seeded, melt = frames_of_size(a, cells)
        n_max = np.array([freud_largest_cluster(f, a.cutoff) for f in seeded], dtype=float)
        nn_, nc, nl = outputs(encoder, seeded)
        mn, mc, ml = outputs(encoder, melt)
        melt_max = np.array([freud_largest_cluster(f, a.cutoff) for f in melt], dtype=float)
        rho = lambda x: spearmanr(x, n_max).statistic  # noqa: E731
        print(
            f"| {4 * cells**3} | {len(seeded)} | {n_max.min():.0f}–{n_max.max():.0f} | {rho(nn_):.3f} | "
            f"{np.abs(nn_ - n_max).mean():.1f} | {rho(nl):.3f} | {np.abs(nl - n_max).mean():.1f} | "
            f"{rho(nc):.3f} | {np.abs(nc - n_max).mean():.1f} | {mn.mean():.2f} ± {mn.std():.2f} | "
            f"{ml.mean():.2f} ± {ml.std():.2f} | {mc.mean():.1f} ± {mc.std():.1f} | {melt_max.mean():.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
