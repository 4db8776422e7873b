"""Cost of each of latentcv's fused operators, forward and backward, next to the whole encoder.

On the LJ frames of ``encoder_cost.py`` (fcc at density 1.0 with 0.1 σ noise, pair list with
the C++ core's skin) and the default :class:`~latentcv.cv_models.config.ModelConfig` widths
(8 radial functions, 4 moment channels, degree 6), float64, 1 thread, it times
``pair_geometry`` and its backward, ``shell_moments`` and its backward and
``bond_order_sums`` and its backward on random inputs of the encoder's shapes, the whole
scripted encoder's forward + one vector–Jacobian product (random weights), and the same on
a pair list with no pair inside the cutoff (the encoder's per-molecule work alone: what
would remain if every per-pair pass cost nothing), and prints a markdown table (best of
repeated calls, ms). To compare two builds of the operators, run it once per build (``make
build`` in between) on the same machine.

    .venv/bin/python benchmarks/fused_ops.py [--sizes 256 2048 8192]
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict

import torch

from encoder_cost import build_encoder, cost, lj_frame, timeit
from latentcv.cv_models.config import ModelConfig
from latentcv.cv_models.graphs import neighbor_list
from latentcv.cv_models.layers import AngularMoments
from latentcv.cv_models.native.ops import load_ops


def operator_calls(n: int, cfg: ModelConfig, pos, cell, ei, sh) -> Dict[str, Callable[[], object]]:
    """The operators' calls on an n-atom LJ frame, with inputs of the encoder's shapes."""
    frame = torch.zeros(n, dtype=torch.long)
    mu = torch.linspace(0.0, cfg.cutoff, cfg.rbf, dtype=torch.float64)
    width = cfg.cutoff / max(cfg.rbf - 1, 1)  # as GaussianRBF
    ops = torch.ops.latentcv
    pairs, kept, d, r, w, rbf = ops.pair_geometry(pos, cell[None], frame, ei, sh, cfg.cutoff, cfg.r_on, mu, width)
    am = AngularMoments(
        cfg.hidden, cfg.rbf, cfg.moment_channels, cfg.max_rank, cfg.moment_step, list(cfg.moment_degrees)
    )
    zc, xy, deg = am.harmonics.matrix.double(), am.xy_column, am.degree_of_column
    gen = torch.Generator().manual_seed(0)
    rho = torch.randn(d.shape[0], cfg.moment_channels, dtype=torch.float64, generator=gen)
    g_t = torch.randn(n, cfg.moment_channels, zc.shape[1], dtype=torch.float64, generator=gen)
    g_s = torch.randn(n, cfg.moment_channels, am.n_degrees, dtype=torch.float64, generator=gen)
    g_geo = [torch.randn(t.shape, dtype=torch.float64, generator=gen) for t in (d, r, w, rbf)]
    tn = ops.shell_moments(d, rho, pairs[0], n, zc, xy)
    return {
        "pair_geometry": lambda: ops.pair_geometry(pos, cell[None], frame, ei, sh, cfg.cutoff, cfg.r_on, mu, width),
        "pair_geometry backward": lambda: ops.pair_geometry_backward(
            *g_geo, pairs, kept, d, r, rbf, sh, frame, n, 1, cfg.cutoff, cfg.r_on, mu, width
        ),
        "shell_moments": lambda: ops.shell_moments(d, rho, pairs[0], n, zc, xy),
        "shell_moments backward": lambda: ops.shell_moments_backward(g_t, d, rho, pairs[0], zc, xy),
        "bond_order_sums": lambda: ops.bond_order_sums(tn, pairs, w, deg, am.n_degrees),
        "bond_order_sums backward": lambda: ops.bond_order_sums_backward(g_s, g_s, tn, pairs, w, deg, am.n_degrees),
    }


def far_pair(ei: torch.Tensor, sh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A pair list of one pair beyond the cutoff (0 -> 1, three cells away): the encoder
    drops it first, so what remains is its per-molecule work (node MLPs, poolings, heads)."""
    one = torch.tensor([[0], [1]], dtype=ei.dtype)
    return one, torch.tensor([[3.0, 0.0, 0.0]], dtype=sh.dtype)


def size_row(n: int, cfg: ModelConfig) -> Dict[str, float]:
    """ms of every operator call and of the scripted encoder's forward + one
    vector–Jacobian product (``encoder_cost.cost``), on the full pair list and on none."""
    pos, cell = lj_frame(n)
    ei, sh = neighbor_list(pos, cell, cfg.cutoff * 1.1)
    row = {name: timeit(call) for name, call in operator_calls(n, cfg, pos, cell, ei, sh).items()}
    enc = torch.jit.script(build_encoder("", torch.float64))
    row["encoder forward + vjp"] = cost(enc, pos, cell, ei, sh)["fwd_bwd"]
    row["encoder forward + vjp, per-molecule part only"] = cost(enc, pos, cell, *far_pair(ei, sh))["fwd_bwd"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 2048, 8192])
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_ops()
    cfg = ModelConfig(atoms_per_molecule=1, species=[0], n_species=1)
    rows = {n: size_row(n, cfg) for n in args.sizes}
    print("| ms (1 thread, float64) | " + " | ".join(f"{n} atoms" for n in args.sizes) + " |")
    print("|---|" + "---:|" * len(args.sizes))
    for name in rows[args.sizes[0]]:
        print(f"| {name} | " + " | ".join(f"{rows[n][name]:.3f}" for n in args.sizes) + " |")


if __name__ == "__main__":
    main()
