"""Graph layers of latentcv: message passing, attention, EGNN, angular moments, poolings.

Conventions shared by every layer:

* ``edge_index`` [2, E] int64: ``edge_index[0]`` is the receiving node i, ``edge_index[1]``
  the sending node j (the pair (i, j) of docs/model-contract.md, ``d_ij = x_j - x_i``).
  Graphs are given as full directed lists (both directions present).
* ``edge_weight`` [E] in [0, 1]: a smooth switching weight ``s(r_ij)``. Every message is
  multiplied by it, so a pair that reaches the cutoff contributes nothing, with zero
  derivative: the layers are continuous with continuous gradients when pairs enter or
  leave the neighbour list.
* ``batch`` [N] int64: graph index of each node, for the poolings.
* Only invariant inputs (distances, dot products, species embeddings) enter node and edge
  features; the only equivariant quantities are the coordinates of :class:`EGNNLayer` and
  the unit vectors of :class:`AngularMoments`, whose outputs are invariant.

All layers are TorchScript-scriptable, use core PyTorch ops only (scatter through
``index_add_``) and work in float32 and float64 (they follow the dtype of their
parameters). :class:`TopKPool` is offered for analysis only: it is not smooth and must not
be used in an exported encoder.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = [
    "scatter_sum",
    "scatter_mean",
    "MLP",
    "GaussianRBF",
    "MessagePassing",
    "AttentionMessagePassing",
    "EGNNLayer",
    "AngularMoments",
    "MeanPool",
    "SumPool",
    "AttentionPool",
    "DiffPool",
    "TopKPool",
    "InnerProductDecoder",
    "make_pool",
]


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


class MLP(nn.Module):
    """Multi-layer perceptron with SiLU (smooth) activations between linear layers.

    Args:
        dims: layer widths ``[in, hidden..., out]``.
        activate_last: apply SiLU after the last linear layer too.
    Shapes: [*, in] -> [*, out].
    """

    def __init__(self, dims: List[int], activate_last: bool = False) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        for k in range(len(dims) - 1):
            layers.append(nn.Linear(dims[k], dims[k + 1]))
            if k < len(dims) - 2 or activate_last:
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class GaussianRBF(nn.Module):
    """Gaussian radial basis ``exp(-(r - mu_k)^2 / (2 w^2))``, k = 1..n, mu on [0, cutoff].

    Smooth in r; multiply by the switching weight to make it vanish at the cutoff.
    Shapes: r [E] -> [E, n].
    """

    def __init__(self, n: int, cutoff: float) -> None:
        super().__init__()
        self.register_buffer("mu", torch.linspace(0.0, cutoff, n))
        self.width = float(cutoff / max(n - 1, 1))

    def forward(self, r: Tensor) -> Tensor:
        mu = self.mu.to(r.dtype)
        return torch.exp(-0.5 * ((r.unsqueeze(-1) - mu) / self.width) ** 2)


class MessagePassing(nn.Module):
    r"""Edge-conditioned message passing with a choice of aggregation.

    Gilmer et al., "Neural Message Passing for Quantum Chemistry", ICML 2017; the seed's
    "simple message passing layer":

    .. math::
        m_{ij} = \phi_m(h_i, h_j, e_{ij}),\quad
        a_i = \mathrm{AGG}_j\, w_{ij} m_{ij},\quad
        h_i' = h_i + \phi_u(h_i, a_i)

    (the residual only when in and out widths agree).

    Args:
        node_dim: input node width F.
        edge_dim: edge feature width D (invariant features: radial basis, dot products).
        out_dim: output width F'.
        aggr: ``"sum"``; ``"mean"`` = ``sum_j w m / (1 + sum_j w)``, a mean that stays
            smooth when the last neighbour leaves; ``"max"`` (element-wise max of
            ``w m``, continuous but not smooth: analysis only).
    Shapes: x [N, F], edge_index [2, E], edge_attr [E, D], edge_weight [E] -> [N, F'].
    """

    def __init__(self, node_dim: int, edge_dim: int, out_dim: int, aggr: str = "sum") -> None:
        super().__init__()
        if aggr not in ("sum", "mean", "max"):
            raise ValueError(f"MessagePassing: aggr must be 'sum', 'mean' or 'max', got {aggr!r}")
        self.aggr = aggr
        self.phi_m = MLP([2 * node_dim + edge_dim, out_dim, out_dim], activate_last=True)
        self.phi_u = MLP([node_dim + out_dim, out_dim, out_dim])
        self.residual = node_dim == out_dim

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        m = self.phi_m(torch.cat([x[i], x[j], edge_attr], dim=-1)) * edge_weight.unsqueeze(-1)
        n = x.shape[0]
        if self.aggr == "max":
            a = torch.zeros(n, m.shape[1], dtype=m.dtype, device=m.device)
            a = a.scatter_reduce(0, i.unsqueeze(-1).expand_as(m), m, reduce="amax", include_self=True)
        else:
            a = scatter_sum(m, i, n)
            if self.aggr == "mean":
                deg = scatter_sum(edge_weight, i, n)
                a = a / (1.0 + deg).unsqueeze(-1)
        out = self.phi_u(torch.cat([x, a], dim=-1))
        if self.residual:
            out = out + x
        return out


class AttentionMessagePassing(nn.Module):
    r"""Multi-head graph attention with switched, bounded attention weights.

    After Veličković et al., "Graph Attention Networks", ICLR 2018, and the seed's
    "attention based message passing", made smooth for use as a collective variable:

    .. math::
        e^k_{ij} = 5 \tanh(\phi_a(h_i, h_j, e_{ij})_k / 5),\quad
        \alpha^k_{ij} = \frac{w_{ij} \exp e^k_{ij}}{1 + \sum_l w_{il} \exp e^k_{il}},\quad
        h_i' = h_i + \phi_o\big(h_i, \Vert_k \textstyle\sum_j \alpha^k_{ij} v^k_{ij}\big)

    with values ``v_ij = phi_v(h_j, e_ij)``. The "1 +" is a fixed-logit self term: no
    division by zero for isolated nodes, and alpha -> 0 smoothly as w_ij -> 0. Bounded
    logits make a max-subtraction unnecessary.

    Args:
        node_dim: F; edge_dim: D; out_dim: F'; heads: number of heads H (out_dim % H == 0).
    Shapes: x [N, F], edge_index [2, E], edge_attr [E, D], edge_weight [E] -> [N, F'].
    ``attention(...)`` returns the [E, H] weights alpha.
    """

    def __init__(self, node_dim: int, edge_dim: int, out_dim: int, heads: int = 2) -> None:
        super().__init__()
        if out_dim % heads != 0:
            raise ValueError(f"AttentionMessagePassing: out_dim={out_dim} is not a multiple of heads={heads}")
        self.heads = heads
        self.head_dim = out_dim // heads
        self.phi_a = MLP([2 * node_dim + edge_dim, out_dim, heads])
        self.phi_v = MLP([node_dim + edge_dim, out_dim, out_dim])
        self.phi_o = MLP([node_dim + out_dim, out_dim, out_dim])
        self.residual = node_dim == out_dim

    def attention(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        logit = 5.0 * torch.tanh(self.phi_a(torch.cat([x[i], x[j], edge_attr], dim=-1)) / 5.0)
        num = edge_weight.unsqueeze(-1) * torch.exp(logit)  # [E, H]
        den = 1.0 + scatter_sum(num, i, x.shape[0])
        return num / den[i]

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        alpha = self.attention(x, edge_index, edge_attr, edge_weight)
        v = self.phi_v(torch.cat([x[j], edge_attr], dim=-1)).view(-1, self.heads, self.head_dim)
        a = scatter_sum(v * alpha.unsqueeze(-1), i, x.shape[0]).reshape(x.shape[0], -1)
        out = self.phi_o(torch.cat([x, a], dim=-1))
        if self.residual:
            out = out + x
        return out


class EGNNLayer(nn.Module):
    r"""E(n)-equivariant graph layer (Satorras, Hoogeboom, Welling, ICML 2021).

    .. math::
        m_{ij} = \phi_e(h_i, h_j, \lVert x_i - x_j\rVert^2, a_{ij}),\quad
        x_i' = x_i + \frac{\sum_j w_{ij} (x_i - x_j)\, \phi_x(m_{ij})}{1 + \sum_j w_{ij}},\quad
        h_i' = h_i + \phi_h\big(h_i, \textstyle\sum_j w_{ij} m_{ij}\big)

    ``h`` stays invariant, ``x`` equivariant (rotations, reflections, translations) and
    permutation-equivariant. ``phi_x`` is bounded by ``tanh`` for stability. Pass
    ``edge_vec`` (= x_j - x_i, e.g. minimum-image displacements in a periodic cell) to use
    given displacements instead of coordinate differences.

    Args:
        node_dim: F (in = out); edge_dim: D of a_ij (0 for none); hidden: width of the MLPs.
    Shapes: h [N, F], x [N, 3], edge_index [2, E], edge_attr [E, D], edge_weight [E]
        -> (h' [N, F], x' [N, 3]).
    """

    def __init__(self, node_dim: int, edge_dim: int = 0, hidden: int = 32) -> None:
        super().__init__()
        self.phi_e = MLP([2 * node_dim + 1 + edge_dim, hidden, hidden], activate_last=True)
        self.phi_x = MLP([hidden, hidden, 1])
        self.phi_h = MLP([node_dim + hidden, hidden, node_dim])

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        edge_weight: Tensor,
        edge_vec: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor]:
        i = edge_index[0]
        j = edge_index[1]
        if edge_vec is None:
            d = x[j] - x[i]
        else:
            d = edge_vec
        r2 = (d * d).sum(-1, keepdim=True)
        m = self.phi_e(torch.cat([h[i], h[j], r2, edge_attr], dim=-1))
        w = edge_weight.unsqueeze(-1)
        n = h.shape[0]
        shift = scatter_sum(-d * torch.tanh(self.phi_x(m)) * w, i, n)
        deg = scatter_sum(edge_weight, i, n)
        x_new = x + shift / (1.0 + deg).unsqueeze(-1)
        h_new = h + self.phi_h(torch.cat([h, scatter_sum(m * w, i, n)], dim=-1))
        return h_new, x_new


def _multinomial_table(rank: int) -> Tuple[List[List[int]], List[float]]:
    exps: List[List[int]] = []
    coef: List[float] = []
    for a in range(rank, -1, -1):
        for b in range(rank - a, -1, -1):
            c = rank - a - b
            exps.append([a, b, c])
            coef.append(math.factorial(rank) / (math.factorial(a) * math.factorial(b) * math.factorial(c)))
    return exps, coef


class AngularMoments(nn.Module):
    r"""Rotation-invariant angular descriptors from learned, switched moment tensors.

    For each node, channel c and rank n = 1..L the symmetric moment tensor
    :math:`T^{c,n}_i = \sum_j w_{ij} \rho_c(r_{ij}, h_j)\, \hat d_{ij}^{\otimes n}` gives the
    invariant

    .. math::
        q^{c,n}_i = \frac{\lVert T^{c,n}_i \rVert_F^2}{(1 + \sum_j w_{ij})^2}
        = \frac{\sum_{j,k} \rho_j \rho_k (\hat d_{ij}\cdot\hat d_{ik})^n}{(1 + \sum_j w_{ij})^2},

    a learned, smooth relative of the Steinhardt order parameters (the powers
    :math:`(\cos\theta)^n, n \le L` span the Legendre polynomials up to L; L = 6 reaches
    the q6 of crystal detection; cf. moment-tensor potentials, Shapeev 2016). Computed
    from the (n+1)(n+2)/2 distinct monomials of each rank, O(E).

    Args:
        node_dim: F of h; rbf_dim: R of the radial basis; channels: C; max_rank: L.
    Shapes: h [N, F], edge_index [2, E], edge_vec [E, 3] (d_ij), edge_rbf [E, R],
        edge_weight [E] -> [N, C * L].
    """

    def __init__(self, node_dim: int, rbf_dim: int, channels: int = 8, max_rank: int = 6) -> None:
        super().__init__()
        self.channels = channels
        self.max_rank = max_rank
        self.rho = MLP([node_dim + rbf_dim, channels * 2, channels])
        exps: List[List[int]] = []
        coefs: List[float] = []
        ranks: List[int] = []
        for n in range(1, max_rank + 1):
            e, c = _multinomial_table(n)
            exps += e
            coefs += c
            ranks += [n - 1] * len(e)
        self.register_buffer("exps", torch.tensor(exps, dtype=torch.long))  # [K, 3]
        self.register_buffer("coefs", torch.tensor(coefs, dtype=torch.float64))  # [K]
        self.register_buffer("ranks", torch.tensor(ranks, dtype=torch.long))  # [K]

    def forward(
        self, h: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_rbf: Tensor, edge_weight: Tensor
    ) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        n = h.shape[0]
        r = torch.sqrt((edge_vec * edge_vec).sum(-1).clamp(min=1e-30))
        u = edge_vec / r.unsqueeze(-1)  # [E, 3]
        # powers u^k, k = 0..L, by repeated products (pow would give NaN gradients at 0)
        powers: List[Tensor] = [torch.ones_like(u)]
        for _ in range(self.max_rank):
            powers.append(powers[-1] * u)
        p = torch.stack(powers, dim=1)  # [E, L+1, 3]
        mono = p[:, self.exps[:, 0], 0] * p[:, self.exps[:, 1], 1] * p[:, self.exps[:, 2], 2]  # [E, K]
        rho = self.rho(torch.cat([h[j], edge_rbf], dim=-1)) * edge_weight.unsqueeze(-1)  # [E, C]
        t = scatter_sum(rho.unsqueeze(-1) * mono.unsqueeze(1), i, n)  # [N, C, K]
        sq = t * t * self.coefs.to(t.dtype)
        q = torch.zeros(n, self.channels, self.max_rank, dtype=t.dtype, device=t.device)
        q = q.index_add_(2, self.ranks, sq)
        deg = scatter_sum(edge_weight, i, n)
        q = q / ((1.0 + deg) ** 2).view(-1, 1, 1)
        return q.reshape(n, self.channels * self.max_rank)


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
