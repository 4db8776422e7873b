"""Achieved FLOP/s of the encoder's value + gradient against the core's peak.

    .venv/bin/python benchmarks/encoder_flops.py --checkpoint RUN/checkpoint.pt [--sizes 256 2048 8192]

One value + one vector–Jacobian product w.r.t. positions and cell (what LATENT_CV does each
MD step) of the scripted encoder on an LJ fcc frame (``encoder_cost.lj_frame``), 1 thread.
The floating-point operations of that call are counted while it runs (a torch dispatch
mode sees every operator, forward and backward):

- matrix products (``mm``, ``addmm``, ``bmm``): 2·m·k·n (+ m·n for the bias);
- latentcv's fused operators: their per-edge operation counts (written below from the
  kernels in ``cpp/latentcv/ops/``);
- elementwise operators and reductions: one operation per element (an exp or a division
  counts 1: a lower bound);
- gathers, scatters by copy, views, concatenations: 0 (data movement).

Peak of one core: FLOP per cycle × clock (``--flops-per-cycle``, default 16 in float64
and 32 in float32: two 256-bit FMA pipes, as on AMD Zen 4 / Intel since Haswell; the
clock from /proc/cpuinfo). The table prints GFLOP per call, ms per call (best of several),
achieved GFLOP/s and its share of that peak.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import encoder_cost as ec
from latentcv.cv_models.graphs import neighbor_list

MATMUL = {"aten::mm", "aten::addmm", "aten::bmm"}
# operators that only move, allocate or view data (base names, without overload or a trailing "_")
MOVES = {
    "index_select",
    "index",
    "gather",
    "cat",
    "stack",
    "copy",
    "clone",
    "view",
    "_unsafe_view",
    "reshape",
    "_reshape_alias",
    "expand",
    "select",
    "select_backward",
    "slice",
    "slice_backward",
    "permute",
    "transpose",
    "t",
    "unsqueeze",
    "squeeze",
    "contiguous",
    "zeros",
    "zeros_like",
    "empty",
    "empty_like",
    "empty_strided",
    "ones",
    "ones_like",
    "fill",
    "zero",
    "detach",
    "alias",
    "as_strided",
    "lift_fresh",
    "new_zeros",
    "new_empty",
    "_to_copy",
    "to",
    "repeat",
    "repeat_interleave",
    "nonzero",
    "arange",
    "index_copy",
    "split",
    "split_with_sizes",
    "unbind",
    "full",
    "full_like",
    "scalar_tensor",
    "_local_scalar_dense",
    "where",
    "embedding",
}


def _numel(x) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else 0


def _harmonics_terms(z_coeffs: torch.Tensor) -> int:
    return int((z_coeffs != 0).sum())


def fused_flops(name: str, args, out) -> int:
    """Operation counts of latentcv's kernels (per edge, then times the edges)."""
    if name == "shell_moments":  # unit vector, powers, polynomials, outer accumulation
        vec, rho, z = args[0], args[1], args[4]
        e, c, k = vec.shape[0], rho.shape[1], z.shape[1]
        lmax = z.shape[0] - 1
        return e * (12 + 6 * lmax + 2 * _harmonics_terms(z) + k + 2 * c * k)
    if name == "shell_moments_backward":
        vec, rho, z = args[1], args[2], args[4]
        e, c, k = vec.shape[0], rho.shape[1], z.shape[1]
        lmax = z.shape[0] - 1
        return e * (12 + 10 * lmax + 4 * _harmonics_terms(z) + k + 4 * c * k + 9 * k + 15)
    if name == "bond_order_sums":
        tn, ei = args[0], args[1]
        e, c, k = ei.shape[1], tn.shape[1], tn.shape[2]
        return e * (2 * c * k + 5 * c * args[4])
    if name == "bond_order_sums_backward":
        tn, ei = args[2], args[3]
        e, c, k = ei.shape[1], tn.shape[1], tn.shape[2]
        return e * (6 * c * k + 9 * c * args[6])
    if name in ("attention_aggregate", "attention_aggregate_backward"):
        values, alpha = (args[0], args[1]) if name == "attention_aggregate" else (args[1], args[2])
        per = 2 * values.shape[1] * values.shape[2]
        return alpha.shape[0] * (per if name == "attention_aggregate" else 2 * per)
    if name == "pair_geometry":  # all pairs: displacement and r^2; kept pairs: r, switch, basis
        p = args[3].shape[1]
        e, r = out[2].shape[0], out[5].shape[1]
        return p * 23 + e * (4 + 14 + 4 * r)
    if name == "pair_geometry_backward":
        e, r = args[6].shape[0], args[8].shape[1]
        return e * (16 + 14 + 4 * r + 27)
    raise KeyError(name)


class FlopCounter(TorchDispatchMode):
    """Counts FLOPs by category (see the module docstring) of everything run inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.flops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.name()  # e.g. "aten::mm", "latentcv::shell_moments"
        ns, op = name.split("::", 1)
        if ns == "latentcv":
            self.flops["fused operators"] += fused_flops(op, args, out)
        elif name in MATMUL:
            a, b = (args[1], args[2]) if name == "aten::addmm" else (args[0], args[1])
            n = 2 * a.shape[-2] * a.shape[-1] * b.shape[-1] * (a.shape[0] if a.dim() == 3 else 1)
            self.flops["matrix products"] += n + (a.shape[-2] * b.shape[-1] if name == "aten::addmm" else 0)
        elif op.split(".")[0].rstrip("_") not in MOVES:
            result = out[0] if isinstance(out, (tuple, list)) and out else out
            self.flops["elementwise and reductions"] += max(_numel(result), max((_numel(a) for a in args), default=0))
        return out


def clock_ghz() -> float:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    mhz = re.findall(r"cpu MHz\s*:\s*([0-9.]+)", text)
    return float(mhz[0]) / 1000 if mhz else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--checkpoint", default="", help="a training checkpoint (default: random default-config LJ encoder)"
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 2048, 8192], choices=sorted(ec.CELLS))
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    ap.add_argument(
        "--flops-per-cycle",
        type=float,
        default=0.0,
        help="peak FLOP per cycle and core in float64 (float32: twice); default 16",
    )
    a = ap.parse_args()
    torch.set_num_threads(1)
    ghz = clock_ghz()
    per_cycle64 = a.flops_per_cycle or 16.0
    rows = []
    for dname in a.dtypes:
        dtype = torch.float64 if dname == "float64" else torch.float32
        enc = ec.build_encoder(a.checkpoint, dtype)
        module = torch.jit.script(enc)
        for n in a.sizes:
            pos, cell = ec.lj_frame(n)
            pos, cell = pos.to(dtype), cell.to(dtype)
            pairs, shifts = neighbor_list(enc.molecule_centers(pos, cell).double(), cell.double(), enc.cutoff * 1.1)
            shifts = shifts.to(dtype)
            weights = torch.linspace(0.5, 1.5, int(module(pos, cell, pairs, shifts).shape[0]), dtype=dtype)

            def value_and_gradient() -> None:
                p = pos.detach().requires_grad_(True)
                c = cell.detach().requires_grad_(True)
                torch.autograd.grad((module(p, c, pairs, shifts) * weights).sum(), (p, c))

            for _ in range(3):
                value_and_gradient()
            counter = FlopCounter()
            with counter:
                value_and_gradient()
            ms = ec.timeit(value_and_gradient)
            total = sum(counter.flops.values())
            peak = ghz * per_cycle64 * (2 if dtype == torch.float32 else 1)
            rows.append((n, dname, counter.flops, total, ms, total / ms / 1e6, peak))
    print(
        f"\nencoder: {a.checkpoint or 'default ModelConfig (LJ)'}; one value + VJP (positions, cell), 1 thread; "
        f"clock {ghz:.2f} GHz, peak {per_cycle64:g} (float64) / {2 * per_cycle64:g} (float32) FLOP/cycle"
    )
    print(
        "| molecules | dtype | MFLOP per call: matrix products / fused operators / elementwise | total MFLOP "
        "| ms | GFLOP/s | share of one core's peak |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, dname, parts, total, ms, gflops, peak in rows:
        split = " / ".join(
            f"{parts.get(k, 0) / 1e6:.2f}" for k in ("matrix products", "fused operators", "elementwise and reductions")
        )
        print(
            f"| {n} | {dname} | {split} | {total / 1e6:.2f} | {ms:.2f} | {gflops:.2f} | {100 * gflops / peak:.1f} % "
            f"of {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
