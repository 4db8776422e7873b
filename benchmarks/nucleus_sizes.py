"""Shape of ``n_nucleus``, ``n_largest`` and ``n_crystal`` at the box sizes users simulate: melts
with spherical crystalline seeds of several sizes at three box sizes (issue 21, item 2),
against the independent largest crystalline cluster n_max of the system's own judge
(``largest_crystalline_cluster``: LJ and dimers freud's ten Wolde on atoms / molecule
centres, trimers local P2 > 0.5 joined within the cutoff).

For each box size it generates (``latentcv generate``'s interface runs, ``cells`` lattice
cells per edge) one run per seed size, the sphere growing or melting at the state point,
and melt runs; then evaluates a trained model on every dumped frame and prints, per size:
Spearman(output, n_max), the mean absolute error in molecules, and the melt's mean ± std
(flat in N?).

    .venv/bin/python benchmarks/nucleus_sizes.py --checkpoint demo_out/train/checkpoint.pt \\
        [--system lj|dimers|trimers] [--cells 4 8 13] [--shares 0.01 0.03 0.08 0.2 0.4] \\
        [--steps 2000] [--melt-steps 4000] [--out /tmp/nucleus_sizes]

Defaults per system: LJ cells 4 8 13 (256, 2 048, 8 788 atoms); dimers 4 8 12 (256,
2 048, 6 912 molecules, cubic fcc boxes like LJ); trimers 3 6 8 (216, 1 728, 4 096
molecules; the cell is 3.5 x 2 x 1.73 lattice units, so the box is twice as long along x
as along z and the shares stop at 0.2, the largest sphere that fits the z edge).
(seeds of fewer than 20 molecules are left out: at 256 LJ atoms the 1 % share.)

``--link-cutoff`` (local P2 only) joins the crystalline molecules into clusters within
that distance instead of the judge's cutoff: the trimer crystal's centres are 1.1 σ apart
within a layer of rods but 1.9 and 2.0 σ apart between layers, so the judge's 1.5 σ
splits a nucleus into its layers (``--link-cutoff 2.1``, the trimers' default from
``SystemSpec.cluster_link``, joins them; ``--link-cutoff 0`` gives the judge's cutoff).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from nucleus_shape import outputs  # benchmarks/nucleus_shape.py
from scipy.stats import spearmanr

from latentcv.cv_models.analysis.crystallinity import largest_crystalline_cluster
from latentcv.cv_models.checkpoint import load_encoder
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS


# per system: (cells per edge of the three boxes, seed shares of the box volume)
DEFAULTS = {
    "lj": ([4, 8, 13], [0.01, 0.03, 0.08, 0.2, 0.4]),
    "dimers": ([4, 8, 12], [0.01, 0.03, 0.08, 0.2, 0.4]),
    "trimers": ([3, 6, 8], [0.01, 0.03, 0.06, 0.1, 0.15, 0.2]),
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--system", choices=sorted(DEFAULTS), default="lj")
    ap.add_argument("--cells", type=int, nargs="+", default=None, help="lattice cells per edge (default per system)")
    ap.add_argument("--shares", type=float, nargs="+", default=None, help="seed shares (default per system)")
    ap.add_argument("--temp", type=float, default=0.0, help="temperature of the seeded runs (default: state point)")
    ap.add_argument("--steps", type=int, default=2000, help="sampled steps per seeded run (and melt run)")
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--melt-steps", type=int, default=4000, help="melting, then as many quench steps, of the melt runs")
    ap.add_argument("--cutoff", type=float, default=0.0, help="the judge's cutoff (default: the system's)")
    ap.add_argument(
        "--link-cutoff",
        type=float,
        default=None,
        help="local P2: join crystalline centres within this (0: --cutoff; default: the system's cluster_link)",
    )
    ap.add_argument("--out", default="/tmp/nucleus_sizes")
    a = ap.parse_args()
    cells, shares = DEFAULTS[a.system]
    a.cells = a.cells or cells
    a.shares = a.shares or shares
    a.cutoff = a.cutoff or SYSTEMS[a.system].tenwolde_cutoff
    if a.link_cutoff is None:
        a.link_cutoff = SYSTEMS[a.system].cluster_link
    if a.link_cutoff and SYSTEMS[a.system].crystal_criterion == "ten_wolde":
        ap.error("--link-cutoff is for the local P2 judge (ten Wolde clusters are joined by solid bonds)")
    return a


def melt_run_config(system: str, cells: int, steps: int, every: int, melt_steps: int) -> GeneratorConfig:
    """A plain melt run (``melt.lmp``) of ``cells``³ lattice cells: 1 000 equilibration steps,
    ``melt_steps`` melting and as many quenching, ``steps`` sampled every ``every``."""
    return GeneratorConfig(
        system=system,
        n_cells=cells,
        phases=("melt",),
        equil_steps=1000,
        prod_steps=steps,
        dump_every=every,
        melt_steps=melt_steps,
        quench_steps=melt_steps,
    )


def frames_of_size(a: argparse.Namespace, cells: int) -> tuple[list, list]:
    """(seeded frames, melt frames) of a box of ``cells``³ lattice cells."""
    spec = SYSTEMS[a.system]
    t = a.temp or spec.temperature
    shares = [share for share in a.shares if share * spec.n_molecules(cells) >= 20]  # a seed of >= 20 molecules
    seeded = GeneratorConfig(
        system=a.system,
        n_cells=cells,
        phases=("interface",),
        interface_seeds=tuple(("sphere", share, t) for share in shares),
        interface_ncz=cells,
        interface_steps=a.steps,
        interface_every=a.every,
    )
    melt = melt_run_config(a.system, cells, a.steps, a.every, a.melt_steps)
    root = Path(a.out) / f"cells{cells}"
    return list(generate(seeded, root / "seeded", reuse=True)), list(generate(melt, root / "melt", reuse=True))


def main() -> None:
    a = parse_args()
    encoder = load_encoder(a.checkpoint).double()
    spec = SYSTEMS[a.system]
    n_max_of = lambda frames: np.array(  # noqa: E731
        [largest_crystalline_cluster(f, spec.crystal_criterion, a.cutoff, a.link_cutoff) for f in frames], dtype=float
    )
    print(
        f"| {'atoms' if a.system == 'lj' else 'molecules'} | seeded frames | n_max range | Spearman n_nucleus | MAE | "
        "Spearman n_largest | MAE | Spearman n_crystal | MAE | melt n_nucleus | melt n_largest | melt n_crystal | melt n_max |"
    )
    print("|---" * 13 + "|")
    for cells in a.cells:
        seeded, melt = frames_of_size(a, cells)
        n_max = n_max_of(seeded)
        nn_, nc, nl = outputs(encoder, seeded)
        mn, mc, ml = outputs(encoder, melt)
        melt_max = n_max_of(melt)
        rho = lambda x: spearmanr(x, n_max).statistic  # noqa: E731
        print(
            f"| {spec.n_molecules(cells)} | {len(seeded)} | {n_max.min():.0f}–{n_max.max():.0f} | {rho(nn_):.3f} | "
            f"{np.abs(nn_ - n_max).mean():.1f} | {rho(nl):.3f} | {np.abs(nl - n_max).mean():.1f} | "
            f"{rho(nc):.3f} | {np.abs(nc - n_max).mean():.1f} | {mn.mean():.2f} ± {mn.std():.2f} | "
            f"{ml.mean():.2f} ± {ml.std():.2f} | {mc.mean():.1f} ± {mc.std():.1f} | {melt_max.mean():.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
