"""Cost of ``n_largest`` (LargestNucleus): its value and one backward, latentcv's fused
``sphere_mass`` operator against the core-torch pair sum ([a, a, 3] tensors), 1 thread.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/largest_nucleus_cost.py [--repeats 10]
        [--active 100 300 1000 2000] [--boxes 2048 8788] [--dtype float64]

LJ fcc lattices at density 0.95 (cubic boxes of 2 048 and 8 788 molecules, positions jittered
by 0.05 sigma), the layer of the LJ model (cutoff 1.5: R = 6, ramp 1.5, beta 0.2). The a
molecules nearest the box centre are nucleated (shares 0.5-1, the rest 0.01, below the floor):
a spherical nucleus of a molecules, so that every active pair within R counts. Prints a
markdown table of the median ms (of --repeats) and the largest difference between the two
paths of the value, and of the gradients (shares, centres, cell) relative to the largest
|gradient| (the cell's is ~0 when no active pair crosses the box).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from latentcv.cv_models.layers import LargestNucleus
from latentcv.cv_models.synthetic import fcc_positions

DENSITY = 0.95
CUTOFF = 1.5  # the LJ model's (examples/lj/train.toml): R = 4 x cutoff, ramp = cutoff


def lattice(n_molecules: int, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """fcc positions [M, 3] at DENSITY, jittered, and the cubic cell [3, 3]."""
    cells = round((n_molecules / 4) ** (1 / 3))
    assert 4 * cells**3 == n_molecules, f"{n_molecules} is not an fcc box (4 n^3)"
    side = (n_molecules / DENSITY) ** (1 / 3)
    x = torch.from_numpy(fcc_positions(cells, side / cells)[0]).double()
    x += 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x.to(dtype), (torch.eye(3, dtype=torch.float64) * side).to(dtype)


def shares(x: torch.Tensor, side: float, active: int, seed: int) -> torch.Tensor:
    """0.5-1 for the ``active`` molecules nearest the centre of the box, 0.01 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    c = torch.full((x.shape[0],), 0.01, dtype=x.dtype)
    near = torch.argsort(((x - 0.5 * side) ** 2).sum(1))[:active]
    c[near] = 0.5 + 0.5 * torch.rand(active, generator=g, dtype=torch.float64).to(x.dtype)
    return c


def evaluate(layer: LargestNucleus, share, x, cell):
    """n_largest and its gradients (share, centres, cell), one backward."""
    leaves = [t.clone().requires_grad_(True) for t in (share, x, cell.unsqueeze(0))]
    batch = torch.zeros(share.shape[0], dtype=torch.long)
    out = layer(leaves[0], leaves[1], leaves[2], batch, 1)
    return out.detach(), torch.autograd.grad(out.sum(), leaves)


def median_ms(layer, share, x, cell, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        evaluate(layer, share, x, cell)
        times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--active", type=int, nargs="+", default=[100, 300, 1000, 2000])
    ap.add_argument("--boxes", type=int, nargs="+", default=[2048, 8788])
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dtype = getattr(torch, args.dtype)
    fused = LargestNucleus(4 * CUTOFF, CUTOFF, 0.2, fused=True).to(dtype)
    core = LargestNucleus(4 * CUTOFF, CUTOFF, 0.2, fused=False).to(dtype)
    print(f"LargestNucleus value + backward, {args.dtype}, 1 thread, median of {args.repeats} (ms)\n")
    print("| molecules | active a | n_largest | core torch | fused | speed-up | value diff | gradient diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in args.boxes:
        x, cell = lattice(m, seed=m, dtype=dtype)
        for a in args.active:
            share = shares(x, float(cell[0, 0]), min(a, m), seed=a)
            (vf, gf), (vc, gc) = evaluate(fused, share, x, cell), evaluate(core, share, x, cell)
            scale = max(float(q.abs().max()) for q in gc)
            diff = max(float((p - q).abs().max()) for p, q in zip(gf, gc)) / scale
            t_core = median_ms(core, share, x, cell, args.repeats)
            t_fused = median_ms(fused, share, x, cell, args.repeats)
            print(
                f"| {m} | {min(a, m)} | {float(vf):.1f} | {t_core:.1f} | {t_fused:.2f} | "
                f"{t_core / t_fused:.0f}x | {float((vf - vc).abs()):.0e} | {diff:.0e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
