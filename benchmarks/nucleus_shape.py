"""How well ``n_nucleus`` and ``n_crystal`` follow the size of the largest crystalline
cluster (freud's ten Wolde ``largest_cluster_size``, independent of the model), on the
frames of a dataset, and what each reads in the melt at two box sizes.

    .venv/bin/python benchmarks/nucleus_shape.py --checkpoint demo_out/train/checkpoint.pt \\
        --dataset demo_out/data/lj.npz [--cutoff 1.5] [--tile 2]

Prints, per trajectory kind, Spearman(output, n_max) and the mean absolute error in
molecules; then the melt frames as they are and tiled ``--tile``³ times (the same melt,
8x the molecules): the melt reading should not grow with N.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses

import numpy as np
import torch
from scipy.stats import spearmanr

from latentcv.cv_models.analysis.crystallinity import freud_largest_cluster
from latentcv.cv_models.batching import encode_frames, prepare_samples
from latentcv.cv_models.checkpoint import load_encoder
from latentcv.cv_models.data.dataset import Dataset


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--cutoff", type=float, default=1.5, help="ten Wolde neighbour cutoff (molecule centres)")
    ap.add_argument("--tile", type=int, default=2, help="melt frames tiled tile^3 times for the size check")
    return ap.parse_args()


def tiled(frame, k: int):
    """The frame repeated k x k x k times (k^3 as many molecules, the same local structure)."""
    shifts = np.array([[i, j, l] for i in range(k) for j in range(k) for l in range(k)], dtype=float) @ frame.cell
    positions = (frame.positions[None] + shifts[:, None]).reshape(-1, 3)
    return dataclasses.replace(
        frame,
        positions=positions,
        cell=frame.cell * k,
        molecule=np.concatenate([frame.molecule + n * (frame.molecule.max() + 1) for n in range(k**3)]),
        species=np.tile(frame.species, k**3),
    )


def outputs(encoder, frames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_nucleus, n_crystal, n_largest) per frame."""
    samples = prepare_samples(frames, encoder.atoms_per_molecule, float(encoder.cutoff), torch.float64)
    out = encode_frames(encoder, samples, torch.device("cpu"), batch_size=4)
    return out["n_nucleus"].numpy(), out["n_crystal"].numpy(), out["n_largest"].numpy()


def main() -> None:
    args = parse_args()
    encoder = load_encoder(args.checkpoint).double()
    frames = list(Dataset.load(args.dataset))
    kinds = collections.defaultdict(list)
    for f in frames:
        kinds[f.trajectory.split("-")[1] if "-" in f.trajectory else f.trajectory].append(f)
    print(
        f"{'frames':<22} {'n':>4} {'n_max range':>13} | {'Spearman n_nucleus':>18} {'MAE':>7} | "
        f"{'Spearman n_crystal':>18} {'MAE':>7}"
    )
    for kind, fs in sorted(kinds.items()):
        n_max = np.array([freud_largest_cluster(f, args.cutoff) for f in fs], dtype=float)
        nn_, nc, _ = outputs(encoder, fs)
        rho = lambda a: spearmanr(a, n_max).statistic if np.ptp(n_max) > 0 else float("nan")  # noqa: E731
        print(
            f"{kind:<22} {len(fs):>4} {f'{n_max.min():.0f}-{n_max.max():.0f}':>13} | {rho(nn_):>18.3f} "
            f"{np.abs(nn_ - n_max).mean():>7.1f} | {rho(nc):>18.3f} {np.abs(nc - n_max).mean():>7.1f}"
        )
    melt = [f for f in frames if int(f.label) == 0]
    for k in (1, args.tile):
        fs = [tiled(f, k) for f in melt] if k > 1 else melt
        nn_, nc, _ = outputs(encoder, fs)
        print(
            f"melt, {fs[0].n_molecules if hasattr(fs[0], 'n_molecules') else len(fs[0].positions)} molecules: "
            f"n_nucleus {nn_.mean():.2f} ± {nn_.std():.2f}, n_crystal {nc.mean():.2f} ± {nc.std():.2f}"
        )


if __name__ == "__main__":
    main()
