"""Cost of the scripted latentcv encoder per MD step, next to a plain LAMMPS LJ MD step.

For 256, 2048 and 8192 molecules (LJ: one atom each, fcc at reduced density 1.0 with
Gaussian noise of 0.1 σ: a hot, disordered crystal; pair list built with the C++ core's
default skin, 0.1 × cutoff) it times, on one thread:

- ``fwd``: ``encoder(positions, cell, edge_index, edge_shift)`` under ``no_grad``;
- ``fwd+bwd``: the same with ``requires_grad`` on positions and cell and one
  vector–Jacobian product (``torch.autograd.grad`` of a weighted sum of the outputs
  w.r.t. positions and cell) — what the PLUMED action does every step;

in float64 and float32, for the TorchScript (``torch.jit.script``) module (``--eager``
adds the eager module), and the plain LAMMPS MD step (``lj/cut 2.5``, fcc 0.9, NVE,
``neighbor 0.3 bin``) at the same atom count, measured in the same process, so the
ratio ``fwd+bwd / MD step`` is comparable across machines.

Usage::

    .venv/bin/python benchmarks/encoder_cost.py [--checkpoint run/checkpoint.pt] [--sizes 256 2048 8192]
        [--eager] [--compiled] [--extra old=old_encoder_float64.pt old=old_encoder_float32.pt]

``--compiled`` adds the same encoder compiled by ``torch.compile`` (inductor, C++ on the CPU,
one graph, static sizes: compiled again for each size), latentcv's operators kept as calls
(their fake kernels, :mod:`latentcv.cv_models.native.fake_kernels`): does the compiler's
fusion of the core-torch glue between the operators beat TorchScript?

``--extra`` times saved TorchScript encoders (e.g. the previous architecture, scripted
and saved by its own code) in the same process, so before/after ratios are measured
side by side on a shared machine.

Without ``--checkpoint`` an encoder of the default :class:`latentcv.cv_models.config.ModelConfig`
(LJ: cutoff 1.5, r_on 1.2) with random weights is timed (cost does not depend on weights).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from latentcv.cv_models.config import ModelConfig
from latentcv.cv_models.graphs import neighbor_list
from latentcv.cv_models.model import HierarchicalEncoder
from latentcv.cv_models.synthetic import fcc_positions

torch.set_num_threads(1)

# (nx, ny, nz) fcc cells for each molecule count (4 atoms per cell)
CELLS = {256: (4, 4, 4), 2048: (8, 8, 8), 8192: (16, 16, 8), 500: (5, 5, 5), 864: (6, 6, 6)}


def lj_frame(n: int, density: float = 1.0, noise: float = 0.1, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """fcc positions [n, 3] (σ) with Gaussian noise and the orthorhombic cell [3, 3]
    (sizes not in CELLS: the nearest cube of fcc cells)."""
    side = max(1, round((n / 4) ** (1 / 3)))
    nx, ny, nz = CELLS.get(n, (side, side, side))
    a = (4.0 / density) ** (1.0 / 3.0)
    pts, cell = fcc_positions((nx, ny, nz), a)
    pts = pts + np.random.default_rng(seed).normal(size=pts.shape) * noise
    return torch.tensor(pts), torch.tensor(cell)


def timeit(fn: Callable[[], object], min_time: float = 1.0, max_reps: int = 50) -> float:
    """Best wall time of ``fn`` in ms over >= 5 calls and >= ``min_time`` s (after 6 warm-up
    calls for the profiling executor). The minimum, not the median: on a shared machine
    the other users' load only ever adds time."""
    for _ in range(6):
        fn()
    ts: List[float] = []
    t_end = time.perf_counter() + min_time
    while len(ts) < 5 or (time.perf_counter() < t_end and len(ts) < max_reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.min(ts))


def lammps_ms_per_step(n: int, steps: int) -> float:
    """ms per plain LJ MD step (the embedded LJ system: lj/cut 2.5, fcc 0.9, NVE) at ``n`` atoms, one rank."""
    from latentcv.cv_models.engines import open_lammps
    from latentcv.cv_models.systems import system_commands

    nx, ny, nz = CELLS[n]
    lmp = open_lammps(["-nocite"])
    try:
        lmp.commands_string(system_commands("lj", nx, ncz=nz, density=0.9, dt=0.005))
        for line in (
            "velocity all create 1.44 87287 loop geom",
            "neigh_modify every 20 delay 0 check no",
            "fix 1 all nve",
            "thermo 0",
        ):
            lmp.command(line)
        lmp.command("run 100")
        best = float("inf")
        for _ in range(3):  # best of three chunks (shared machine)
            t0 = time.perf_counter()
            lmp.command(f"run {steps} pre no post no")
            best = min(best, (time.perf_counter() - t0) / steps)
        return 1e3 * best
    finally:
        lmp.close()


def build_encoder(checkpoint: str, dtype: torch.dtype) -> HierarchicalEncoder:
    if checkpoint:
        from latentcv.cv_models.checkpoint import load_encoder

        enc = load_encoder(checkpoint)
    else:
        torch.manual_seed(0)
        enc = HierarchicalEncoder(ModelConfig(atoms_per_molecule=1, species=[0], n_species=1)).eval()
    enc = enc.to(dtype)
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc


def cost(module, pos: torch.Tensor, cell: torch.Tensor, ei: torch.Tensor, sh: torch.Tensor) -> Dict[str, float]:
    """ms of forward (no_grad) and forward + one VJP w.r.t. positions and cell."""
    k = int(module(pos, cell, ei, sh).shape[0])
    w = torch.linspace(0.5, 1.5, k, dtype=pos.dtype)

    def fwd() -> None:
        with torch.no_grad():
            module(pos, cell, ei, sh)

    def fwd_bwd() -> None:
        p = pos.detach().requires_grad_(True)
        c = cell.detach().requires_grad_(True)
        out = module(p, c, ei, sh)
        torch.autograd.grad((out * w).sum(), (p, c))

    return {"fwd": timeit(fwd), "fwd_bwd": timeit(fwd_bwd)}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--checkpoint", default="", help="a training checkpoint (default: random default-config LJ encoder)"
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 2048, 8192], choices=sorted(CELLS))
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    ap.add_argument("--eager", action="store_true", help="also time the eager (unscripted) module")
    ap.add_argument(
        "--compiled",
        action="store_true",
        help="also time torch.compile (inductor, static sizes) of the fused module (module 'inductor')",
    )
    ap.add_argument(
        "--reference",
        action="store_true",
        help="also time the same encoder with core torch ops instead of latentcv's fused "
        "operators (module 'script-reference')",
    )
    ap.add_argument("--md-steps", type=int, default=0, help="MD steps timed (default: about 1 s worth)")
    ap.add_argument(
        "--extra",
        nargs="*",
        default=[],
        metavar="NAME=FILE",
        help="also time saved TorchScript encoders (e.g. an older version), each in the dtype "
        "it was saved in, side by side with this one",
    )
    return ap.parse_args()


def modules_to_time(a: argparse.Namespace, dtype: torch.dtype) -> list:
    """(name, module) pairs of one dtype: this version scripted, and what the flags add."""
    enc = build_encoder(a.checkpoint, dtype)
    kinds = [("script", torch.jit.script(enc))] + ([("eager", enc)] if a.eager else [])
    if a.compiled:
        torch._dynamo.config.cache_size_limit = 64  # one graph per size, grad mode and dtype
        kinds.append(("inductor", torch.compile(enc, fullgraph=True, dynamic=False)))
    if a.reference:
        fused_layers = [m for m in enc.modules() if getattr(m, "fused", False)]
        for m in fused_layers:
            m.fused = False
        kinds.append(("script-reference", torch.jit.script(enc)))
        for m in fused_layers:
            m.fused = True
    for name, path in (x.split("=", 1) for x in a.extra):
        ext = torch.jit.load(path)
        if next(iter(ext.parameters())).dtype == dtype:
            kinds.append((name, ext))
    return kinds


def main() -> None:
    a = parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    md: Dict[int, float] = {}
    for n in a.sizes:
        steps = a.md_steps or max(200, int(1_000_000 / n))
        md[n] = lammps_ms_per_step(n, steps)
    for dname in a.dtypes:
        dtype = torch.float64 if dname == "float64" else torch.float32
        kinds = modules_to_time(a, dtype)
        cutoff = kinds[0][1].cutoff
        for n in a.sizes:
            pos, cell = lj_frame(n)
            pos, cell = pos.to(dtype), cell.to(dtype)
            c = kinds[0][1].molecule_centers(pos, cell)
            ei, sh = neighbor_list(c.double(), cell.double(), cutoff * 1.1)
            sh = sh.to(dtype)
            for kind, mod in kinds:
                r = cost(mod, pos, cell, ei, sh)
                rows.append((n, int(ei.shape[1]), dname, kind, r["fwd"], r["fwd_bwd"], md[n]))
    params = sum(p.numel() for p in build_encoder(a.checkpoint, torch.float64).parameters())
    print(
        f"\nencoder: {a.checkpoint or 'default ModelConfig (LJ)'}, {params} parameters, torch "
        f"{torch.__version__}, {a.threads} thread(s); 'script' = this version, others: --extra"
    )
    print("| molecules | pairs (skin 0.1 rc) | dtype | module | fwd ms | fwd+bwd ms | MD step ms | fwd+bwd / MD step |")
    print("|---|---|---|---|---|---|---|---|")
    for n, p, dn, kind, f, fb, m in rows:
        print(f"| {n} | {p} | {dn} | {kind} | {f:.2f} | {fb:.2f} | {m:.3f} | {fb / m:.1f} |")


if __name__ == "__main__":
    main()
