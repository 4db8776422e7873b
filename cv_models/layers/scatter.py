"""Scatter and gather over edge or node indices: the sums every layer is built from (core torch)."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def scatter_sum(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """``out[k] = sum_{e: index[e] == k} src[e]``; src [E, ...] -> [dim_size, ...]."""
    out = torch.zeros((dim_size,) + src.shape[1:], dtype=src.dtype, device=src.device)
    return out.index_add_(0, index, src)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Mean of ``src`` rows per index (empty groups give 0)."""
    total = scatter_sum(src, index, dim_size)
    ones = torch.ones(index.shape[0], dtype=src.dtype, device=src.device)
    count = scatter_sum(ones, index, dim_size).clamp(min=1.0)
    shape = [dim_size] + [1] * (src.dim() - 1)
    return total / count.view(shape)


def gather(x: Tensor, index: Tensor) -> Tensor:
    """``x[index]`` along dim 0 via ``index_select`` (its backward is an ``index_add_``,
    cheaper than advanced indexing's ``index_put_``)."""
    return torch.index_select(x, 0, index)


def padded_slots(index: Tensor, n: int) -> Tuple[Tensor, int]:
    """Slot of every edge in a padded per-receiver layout [n, slots] (row-major flat
    position ``index[e] * slots + rank of e among its receiver's edges``) and ``slots``
    (the largest in-degree, at least 1). Integer bookkeeping only (no gradient)."""
    e = index.shape[0]
    if e == 0:
        return torch.zeros(0, dtype=torch.long, device=index.device), 1
    order = torch.argsort(index)
    sorted_i = gather(index, order)
    counts = torch.bincount(index, minlength=n)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(e, device=index.device) - gather(start, sorted_i)
    slots = int(counts.max())
    pos = torch.empty_like(index).index_copy_(0, order, sorted_i * slots + rank)
    return pos, slots
