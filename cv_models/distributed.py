"""Data-parallel training on several CPU processes (``[training] processes``).

Each process holds the whole model and data; every global batch (the same frames in the
same order as one process would use) is cut into contiguous shares, one per process. A
share's loss is written so that the shares add up to the loss of the whole batch:
each term is a mean over its own elements (edges, molecules, frames), so a share
contributes ``w_term * mean_share * n_share / n_batch`` with the whole batch's counts
``n_batch`` summed over the processes. Summing the gradients over the processes (gloo
all-reduce) then gives the whole batch's gradient, and every process takes the same
optimiser step: the model equals the one-process model up to summation order.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Dict, List, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .loss_terms import REPORTED_TERMS, TERM_NAMES, merge_parts, term_factors


def shard_bounds(n: int, rank: int, world: int) -> Tuple[int, int]:
    """[lo, hi) of rank's contiguous share of n items (sizes differ by at most one)."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def all_sum(values: List[float]) -> List[float]:
    """Element-wise sum over the processes (float64)."""
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def share_loss(
    terms: Dict[str, Tensor], counts: Dict[str, int], weights: Dict[str, float]
) -> Tuple[Tensor, Dict[str, float]]:
    """This share's part of the whole batch's loss, and the whole batch's terms (floats,
    the same on every process). The terms combine as in
    :meth:`HierarchicalAutoencoder.loss` (:mod:`latentcv.cv_models.loss_terms`)."""
    names = TERM_NAMES
    local = [float(counts.get(k, 0)) for k in names]
    sums = [float(terms[k].detach()) * counts[k] if k in terms else 0.0 for k in names]
    totals = all_sum(local + sums)
    n_batch = dict(zip(names, totals[: len(names)]))
    term_sums = dict(zip(names, totals[len(names) :]))
    present = {k for k in names if n_batch[k] > 0}
    factor = term_factors(weights, present)
    loss = None
    for k in names:
        if k in terms and k in present:
            part = factor[k] * terms[k] * (counts[k] / n_batch[k])
            loss = part if loss is None else loss + part
    if loss is None:  # an empty share: a zero that still has a graph
        loss = sum(t.sum() * 0.0 for t in terms.values())
    parts = merge_parts(
        {k: term_sums[k] / n_batch[k] if k in present else 0.0 for k in names if k in present or k in REPORTED_TERMS}
    )
    parts["total"] = sum(weights[k] * parts[k] for k in REPORTED_TERMS)
    return loss, parts


def sum_gradients(model: nn.Module) -> None:
    """Replace every gradient by its sum over the processes. A parameter no process has a
    gradient for keeps none (the optimiser then skips it, weight decay included, exactly
    as in one process); one that only some processes have counts as 0 on the others."""
    params = [p for p in model.parameters() if p.requires_grad]
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float64)
    dist.all_reduce(has, op=dist.ReduceOp.SUM)
    for p, n in zip(params, has.tolist()):
        if n == 0:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def _worker(rank: int, world: int, init_file: str, fn: Callable, args: tuple, result_file: str) -> None:
    from latentcv.cv_models.checkpoint import plain_data

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        out = fn(*args, rank=rank, world=world)
        if rank == 0:
            torch.save(plain_data(out, "the result of rank 0"), result_file)
    finally:
        dist.destroy_process_group()


def run_processes(world: int, fn: Callable, *args):
    """``fn(*args, rank=r, world=world)`` in ``world`` spawned processes (gloo over a
    rendezvous file); returns rank 0's result as tensors and plain data (a ``Path``
    comes back as ``str``: :func:`~latentcv.cv_models.checkpoint.plain_data`), read with
    ``weights_only=True``. A failing process fails the call."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="latentcv-ddp-") as tmp:
        init_file = os.path.join(tmp, "rendezvous")
        result_file = os.path.join(tmp, "result.pt")
        mp.spawn(_worker, args=(world, init_file, fn, args, result_file), nprocs=world, join=True)
        return torch.load(result_file, map_location="cpu", weights_only=True)
