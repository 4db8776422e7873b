"""Latency of one CV evaluation (value + gradient, the MD-step path) against N, on a GPU
and on the CPU, in float32 and float64: the prepared script for a machine with an NVIDIA
GPU (benchmark, not a test; without a GPU it runs the CPU rows only, as a smoke run).

    .venv/bin/python benchmarks/gpu_latency.py --model model.pt [--model model32.pt]
        [--atoms 2048 32000 100000 1000000] [--devices cuda cpu] [--reps 20]

For each model (exported by `latentcv export`, lj units, one atom per molecule) and N (LJ
fcc at reduced density 1.0 with 0.1 σ noise):

- ``core``: the C++ core as LATENT_CV uses it (`native.Model(..., device=D)`:
  evaluate_deferred + vector_jacobian), positions from host memory every call, the
  neighbour list on the CPU (rebuilt only when needed, as in MD): ms per evaluation;
- ``resident``: the same TorchScript model with positions, cell and pair list already on
  the device (`torch.jit.load`, one forward + one backward): the device's own compute;
- ``host share``: 1 - resident / core (copies, neighbour list, bookkeeping);
- ``CPU = GPU``: the largest relative difference of values and gradients against the CPU
  core at the smallest N.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from latentcv.cv_models.native import core as native
from latentcv.cv_models.graphs import neighbor_list
from encoder_cost import lj_frame as encoder_cost_frame  # benchmarks/encoder_cost.py
from latentcv.export.deploy import load_deployable


def lj_frame(n_atoms: int):
    """LJ fcc at density 1.0 with 0.1 σ noise (numpy): the frames of encoder_cost.py."""
    pos, cell = encoder_cost_frame(n_atoms)
    return pos.numpy(), cell.numpy()


def best_ms(fn, reps: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def core_ms(model: "native.Model", pos: np.ndarray, cell: np.ndarray, reps: int) -> float:
    k = len(model.output_names)
    w = np.linspace(0.5, 1.5, k)

    def step():
        model.evaluate_deferred(pos, cell)
        model.vector_jacobian(w)

    return best_ms(step, reps)


def resident_ms(path: str, device: str, pos: np.ndarray, cell: np.ndarray, reps: int) -> float:
    module = load_deployable(path).to(device)
    dtype = next(iter(module.parameters())).dtype
    cutoff = float(module.metadata()["cutoff"])
    ei, sh = neighbor_list(torch.tensor(pos), torch.tensor(cell), 1.1 * cutoff)
    p = torch.tensor(pos, dtype=dtype, device=device)
    c = torch.tensor(cell, dtype=dtype, device=device)
    ei, sh = ei.to(device), sh.to(dtype).to(device)

    def step():
        pp = p.detach().requires_grad_(True)
        cc = c.detach().requires_grad_(True)
        out = module(pp, cc, ei, sh)
        torch.autograd.grad(out.sum(), (pp, cc))

    return best_ms(step, reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="exported lj model(s), one atom per molecule")
    ap.add_argument("--atoms", type=int, nargs="+", default=[2048, 32000, 100000, 1000000])
    ap.add_argument("--devices", nargs="+", default=["cuda", "cpu"])
    ap.add_argument("--cpu-max-atoms", type=int, default=100000, help="skip CPU rows above this N")
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    devices = [d for d in a.devices if d == "cpu" or torch.cuda.is_available()]
    if "cuda" in a.devices and "cuda" not in devices:
        print("no CUDA device visible to torch: CPU rows only (the GPU numbers need a GPU machine)")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, devices {devices}")
    print(
        "| model | dtype | device | atoms | core ms (value + gradient) | resident ms | host share | CPU = GPU (max rel) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in a.model:
        dtype = load_deployable(path).metadata()["dtype"]
        for dev in devices:
            model = native.Model(path, device=dev, threads=1)
            for n in a.atoms:
                if dev == "cpu" and n > a.cpu_max_atoms:
                    continue
                pos, cell = lj_frame(n)
                reps = a.reps if n <= 100000 else max(3, a.reps // 5)
                t_core = core_ms(model, pos, cell, reps)
                t_res = resident_ms(path, dev, pos, cell, reps)
                agree = "–"
                if dev != "cpu" and n == min(a.atoms):
                    ref = native.Model(path, device="cpu").evaluate(pos, cell)
                    got = model.evaluate(pos, cell)
                    agree = (
                        f"{max(float(np.abs(g - r).max() / max(np.abs(r).max(), 1e-30)) for g, r in zip(got, ref)):.1e}"
                    )
                print(
                    f"| {path} | {dtype} | {dev} | {len(pos)} | {t_core:.2f} | {t_res:.2f} | "
                    f"{max(0.0, 1 - t_res / t_core):.0%} | {agree} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
