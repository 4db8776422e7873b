"""One LATENT_CV evaluation split into neighbour search, forward and backward (C++ core).

    .venv/bin/python benchmarks/evaluation_split.py --model model.pt [--model model32.pt]
        [--sizes 256 2048 8192 32000]

For each exported model and LJ fcc frame (``encoder_cost.lj_frame``, 0.1 σ noise), in the
C++ core that LATENT_CV runs, 1 thread, best of several calls:

- neighbour search: a full rebuild of the Verlet pair list on the molecule centres
  (``build_pair_list`` at cutoff + skin); in MD it is rebuilt only when a molecule has
  moved half the skin (every ~20 steps for LJ at the demo's state point), so the per-step
  share is smaller;
- forward: ``evaluate_deferred`` (the values, keeping the autograd graph), with the pair
  list reused;
- backward: ``vector_jacobian`` (one backward pass: the forces and the virial).

Prints a markdown table of ms and each part's share.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

import encoder_cost as ec
from latentcv.cv_models.native import core as native


def best_ms(fn: Callable[[], object], reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="exported LJ model(s)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 2048, 8192, 32000])
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    rows = []
    for path in a.model:
        model = native.Model(path, threads=1)
        k = len(model.output_names)
        weights = [1.0] + [0.0] * (k - 1)
        skin = 0.1 * model.cutoff  # the core's default Verlet skin
        for n in a.sizes:
            pos, cell = ec.lj_frame(n)
            pos, cell = np.ascontiguousarray(pos.numpy()), np.ascontiguousarray(cell.numpy())
            centers = model.molecule_centers(pos, cell)
            search = best_ms(lambda: native.build_pair_list(centers, cell, model.cutoff + skin), a.reps)
            forward = best_ms(lambda: model.evaluate_deferred(pos, cell), a.reps)

            def backward_only() -> float:
                model.evaluate_deferred(pos, cell)
                start = time.perf_counter()
                model.vector_jacobian(weights)
                return time.perf_counter() - start

            backward = min(backward_only() for _ in range(a.reps)) * 1e3
            rows.append((path.split("/")[-1], model.dtype, n, search, forward, backward))
    print(
        "| model | dtype | atoms | neighbour search (full rebuild) ms | forward ms | backward ms | "
        "search : forward : backward |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, dtype, n, s, f, b in rows:
        total = s + f + b
        print(
            f"| {name} | {dtype} | {n} | {s:.2f} | {f:.2f} | {b:.2f} | "
            f"{100 * s / total:.0f} : {100 * f / total:.0f} : {100 * b / total:.0f} % |"
        )


if __name__ == "__main__":
    main()
