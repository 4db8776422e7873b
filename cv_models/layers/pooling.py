"""Poolings of node features per graph (mean, sum, attention, DiffPool, TopK) and the inner-product decoder."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from latentcv.cv_models.layers.mlp import MLP
from latentcv.cv_models.layers.scatter import scatter_mean, scatter_sum


class MeanPool(nn.Module):
    """Mean of node features per graph (intensive). [N, F], batch [N] -> [G, F]."""

    def __init__(self, node_dim: int = 0) -> None:
        super().__init__()
        self.out_dim = node_dim

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        return scatter_mean(x, batch, num_graphs)


class SumPool(nn.Module):
    """Sum of node features per graph (extensive: grows with a nucleus). [N, F] -> [G, F]."""

    def __init__(self, node_dim: int = 0) -> None:
        super().__init__()
        self.out_dim = node_dim

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        return scatter_sum(x, batch, num_graphs)


class AttentionPool(nn.Module):
    r"""Soft-attention (gated) global pooling, Li et al., "Gated Graph Sequence Neural
    Networks", ICLR 2016:

    .. math::
        g_i = 5\tanh(\phi_g(h_i)/5),\quad
        \alpha_i = \frac{\exp g_i}{\sum_{k \in G(i)} \exp g_k},\quad
        y_G = \sum_{i \in G} \alpha_i \phi_v(h_i)

    Smooth, permutation invariant, intensive, but able to weight a few (nucleus) nodes
    strongly. Shapes: x [N, F], batch [N] -> [G, F].
    """

    def __init__(self, node_dim: int) -> None:
        super().__init__()
        self.out_dim = node_dim
        self.phi_g = MLP([node_dim, node_dim, 1])
        self.phi_v = MLP([node_dim, node_dim, node_dim])

    def weights(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        g = torch.exp(5.0 * torch.tanh(self.phi_g(x)[:, 0] / 5.0))
        return g / scatter_sum(g, batch, num_graphs)[batch]

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        a = self.weights(x, batch, num_graphs)
        return scatter_sum(self.phi_v(x) * a.unsqueeze(-1), batch, num_graphs)


class DiffPool(nn.Module):
    r"""DiffPool-style soft cluster assignment (Ying et al., NeurIPS 2018):

    .. math::
        S = \mathrm{softmax}(\phi_s(X)) \in \mathbb{R}^{n \times K},\quad
        X' = S^\top X \in \mathbb{R}^{K \times F},\quad A' = S^\top A S

    per graph; the K cluster rows are flattened to one vector, so the output is invariant
    to node permutations (clusters are indexed by the assignment MLP's outputs, not by
    nodes). Shapes: x [N, F], batch [N] -> [G, K * F]. ``assignment`` gives S [N, K];
    ``coarsen_adjacency`` gives A' [G, K, K] from a weighted edge list.
    """

    def __init__(self, node_dim: int, clusters: int = 2) -> None:
        super().__init__()
        self.clusters = clusters
        self.out_dim = node_dim * clusters
        self.phi_s = MLP([node_dim, node_dim, clusters])

    def assignment(self, x: Tensor) -> Tensor:
        return torch.softmax(self.phi_s(x), dim=-1)

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        s = self.assignment(x)
        xs = s.unsqueeze(-1) * x.unsqueeze(1)  # [N, K, F]
        return scatter_sum(xs, batch, num_graphs).reshape(num_graphs, -1)

    def coarsen_adjacency(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, batch: Tensor, num_graphs: int
    ) -> Tensor:
        s = self.assignment(x)
        i = edge_index[0]
        j = edge_index[1]
        outer = s[i].unsqueeze(-1) * s[j].unsqueeze(1) * edge_weight.view(-1, 1, 1)  # [E, K, K]
        return scatter_sum(outer, batch[i], num_graphs)


class TopKPool(nn.Module):
    """Self-attention top-k node selection (SAGPool, Lee et al. 2019) — ANALYSIS ONLY.

    Keeps the ``ratio`` highest-scoring nodes of each graph and averages them, gated by
    tanh(score). The selection is a hard, non-smooth choice: never export it in a CV.
    Shapes: x [N, F], batch [N] -> [G, F].
    """

    def __init__(self, node_dim: int, ratio: float = 0.5) -> None:
        super().__init__()
        self.out_dim = node_dim
        self.ratio = ratio
        self.score = nn.Linear(node_dim, 1)

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        s = self.score(x)[:, 0]
        out = torch.zeros(num_graphs, x.shape[1], dtype=x.dtype, device=x.device)
        for g in range(num_graphs):
            idx = torch.nonzero(batch == g).view(-1)
            if idx.numel() == 0:
                continue
            k = max(1, int(math.ceil(self.ratio * idx.numel())))
            top = torch.topk(s[idx], k).indices
            sel = idx[top]
            out[g] = (x[sel] * torch.tanh(s[sel]).unsqueeze(-1)).mean(0)
        return out


class InnerProductDecoder(nn.Module):
    r"""Inner-product adjacency decoder (Kipf & Welling, "Variational Graph Auto-Encoders",
    2016): :math:`\hat A_{ij} = \sigma(z_i \cdot z_j)`.

    Shapes: z [N, F], pairs [2, E] -> [E] logits (``forward``) or probabilities (``prob``).
    """

    def forward(self, z: Tensor, pairs: Tensor) -> Tensor:
        return (z[pairs[0]] * z[pairs[1]]).sum(-1)

    def prob(self, z: Tensor, pairs: Tensor) -> Tensor:
        return torch.sigmoid(self.forward(z, pairs))


def make_pool(kind: str, node_dim: int, clusters: int = 2) -> nn.Module:
    """Pooling by name: ``mean``, ``sum``, ``attention``, ``diffpool`` (smooth, exportable)
    or ``topk`` (analysis only). The module's ``out_dim`` is its output width."""
    if kind == "mean":
        return MeanPool(node_dim)
    if kind == "sum":
        return SumPool(node_dim)
    if kind == "attention":
        return AttentionPool(node_dim)
    if kind == "diffpool":
        return DiffPool(node_dim, clusters)
    if kind == "topk":
        return TopKPool(node_dim)
    raise ValueError(f"unknown pooling {kind!r}: use 'mean', 'sum', 'attention', 'diffpool' (or 'topk' for analysis)")


class NucleusCount(nn.Module):
    r"""Smooth size of the crystalline nuclei: crystal-like molecules that sit among
    crystal-like neighbours, summed per graph. [M] probabilities -> [G].

    .. math::
        n_\mathrm{nucleus} = \sum_i p_i\,\sigma\!\left(\frac{f_i - f_0}{\delta}\right),\qquad
        f_i = \frac{\sum_j w_{ij} p_j}{\sum_j w_{ij} + c_0}

    with ``p_i`` a molecule's crystal-likeness, ``w_ij`` the switched weights of the molecule
    graph, ``f_i`` the (weighted) fraction of crystal-like neighbours (``c_0`` a soft minimum
    neighbour count: a molecule with few neighbours is not inside a nucleus). Unlike
    ``sum_i p_i`` it is ~0 in a melt at any size (a chance crystal-like molecule rarely has
    crystal-like neighbours) and it does not count scattered crystal-like molecules; a
    nucleus counts its interior fully and its surface partly. Smooth and invariant whenever
    ``p`` and ``w`` are.

    Args:
        fraction: f_0, the neighbour fraction at which a molecule counts half.
        width: delta, the width of that step (fraction units).
        neighbour_floor: c_0, in neighbours.
    """

    def __init__(self, fraction: float = 0.5, width: float = 0.05, neighbour_floor: float = 0.5) -> None:
        super().__init__()
        if not (0.0 < fraction < 1.0 and width > 0.0 and neighbour_floor > 0.0):
            raise ValueError(
                f"NucleusCount: fraction in (0, 1), width > 0, neighbour_floor > 0; got {fraction}, "
                f"{width}, {neighbour_floor}"
            )
        self.fraction = float(fraction)
        self.width = float(width)
        self.neighbour_floor = float(neighbour_floor)

    def forward(self, p: Tensor, edge_index: Tensor, edge_weight: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """p [M] in (0, 1), edge_index [2, E] (full list), edge_weight [E], batch [M] -> [num_graphs]."""
        return scatter_sum(self.contributions(p, edge_index, edge_weight), batch, num_graphs)

    @torch.jit.export
    def contributions(self, p: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
        """Each molecule's share of n_nucleus, ``p_i sigma((f_i - f_0)/delta)`` [M]."""
        m = p.shape[0]
        coordination = scatter_sum(edge_weight, edge_index[0], m)
        crystalline = scatter_sum(edge_weight * p.index_select(0, edge_index[1]), edge_index[0], m)
        fraction = crystalline / (coordination + self.neighbour_floor)
        return p * torch.sigmoid((fraction - self.fraction) / self.width)
