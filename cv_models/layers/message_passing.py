"""Message passing on a graph with switched edges: plain, attention-weighted and EGNN."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from latentcv.cv_models.layers.fused import kernels_for, use_fused
from latentcv.cv_models.layers.mlp import MLP, PairMLP
from latentcv.cv_models.layers.scatter import gather, scatter_sum


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
        self.phi_m = PairMLP(node_dim, edge_dim, out_dim, out_dim, activate_last=True)
        self.phi_u = MLP([node_dim + out_dim, out_dim, out_dim])
        self.residual = node_dim == out_dim

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        m = self.phi_m(x, i, j, edge_attr) * edge_weight.unsqueeze(-1)
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

    with values ``v_ij = phi_v(h_j, e_ij)`` (``edge_values=True``) or ``v_j = phi_v(h_j)``
    (``edge_values=False``: computed per node, then gathered; the edge enters through the
    attention weights only, which makes the layer several times cheaper). The "1 +" is a fixed-logit self term: no
    division by zero for isolated nodes, and alpha -> 0 smoothly as w_ij -> 0. Bounded
    logits make a max-subtraction unnecessary.

    Args:
        node_dim: F; edge_dim: D; out_dim: F'; heads: number of heads H (out_dim % H == 0);
        edge_values: values depend on the edge features too;
        attention_hidden: hidden width of phi_a (-1: out_dim; 0: linear logits
        ``(W_a h)_i + (W_b h)_j + W_c e``, the cheapest).
    Shapes: x [N, F], edge_index [2, E], edge_attr [E, D], edge_weight [E] -> [N, F'].
    ``attention(...)`` returns the [E, H] weights alpha.
    """

    def __init__(
        self,
        node_dim: int,
        edge_dim: int,
        out_dim: int,
        heads: int = 2,
        edge_values: bool = True,
        attention_hidden: int = -1,
        fused: Optional[bool] = None,
    ) -> None:
        super().__init__()
        if out_dim % heads != 0:
            raise ValueError(f"AttentionMessagePassing: out_dim={out_dim} is not a multiple of heads={heads}")
        self.heads = heads
        self.head_dim = out_dim // heads
        self.phi_a = PairMLP(node_dim, edge_dim, out_dim if attention_hidden < 0 else attention_hidden, heads)
        self.phi_v = PairMLP(node_dim, edge_dim, out_dim, out_dim, use_i=False) if edge_values else None
        self.phi_vn = None if edge_values else MLP([node_dim, out_dim, out_dim])
        self.phi_o = MLP([node_dim + out_dim, out_dim, out_dim])
        self.residual = node_dim == out_dim
        # node values (edge_values=False): the weighted sum over neighbours by latentcv's fused
        # CPU operator (cv_models/native/ops.py) instead of an [E, H, D] gather, product and scatter
        self.fused = use_fused(fused) and not edge_values
        self.kernels = kernels_for(self.fused)

    def attention(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        logit = 5.0 * torch.tanh(self.phi_a(x, i, j, edge_attr) / 5.0)
        num = edge_weight.unsqueeze(-1) * torch.exp(logit)  # [E, H]
        den = 1.0 + scatter_sum(num, i, x.shape[0])
        return num / gather(den, i)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        alpha = self.attention(x, edge_index, edge_attr, edge_weight)
        phi_v = self.phi_v
        phi_vn = self.phi_vn
        if phi_v is not None:
            v = phi_v(x, i, j, edge_attr).view(-1, self.heads, self.head_dim)
            a = scatter_sum(v * alpha.unsqueeze(-1), i, x.shape[0]).reshape(x.shape[0], -1)
        else:
            assert phi_vn is not None
            vn = phi_vn(x).view(-1, self.heads, self.head_dim)  # [N, H, D]
            if self.fused and x.device.type == "cpu":
                a = self.kernels.attention_aggregate(vn, alpha, edge_index).reshape(x.shape[0], -1)
            else:
                v = gather(vn, j)
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
        self.phi_e = PairMLP(node_dim, 1 + edge_dim, hidden, hidden, activate_last=True)
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
            d = gather(x, j) - gather(x, i)
        else:
            d = edge_vec
        r2 = (d * d).sum(-1, keepdim=True)
        m = self.phi_e(h, i, j, torch.cat([r2, edge_attr], dim=-1))
        w = edge_weight.unsqueeze(-1)
        n = h.shape[0]
        shift = scatter_sum(-d * torch.tanh(self.phi_x(m)) * w, i, n)
        deg = scatter_sum(edge_weight, i, n)
        x_new = x + shift / (1.0 + deg).unsqueeze(-1)
        h_new = h + self.phi_h(torch.cat([h, scatter_sum(m * w, i, n)], dim=-1))
        return h_new, x_new


class _PassThrough(nn.Module):
    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        return x


class Stage1Block(nn.Module):
    """One stage-1 layer behind a common signature (h, x) -> (h', x').

    ``kind`` = "egnn" updates both; "mp" / "attention" update h and pass x through.
    """

    def __init__(self, kind: str, node_dim: int, edge_dim: int, aggr: str = "sum", heads: int = 2) -> None:
        super().__init__()
        self.kind = kind
        if kind == "egnn":
            self.egnn = EGNNLayer(node_dim, edge_dim, node_dim)
            self.inv = _PassThrough()
        else:
            self.egnn = None
            if kind == "mp":
                self.inv = MessagePassing(node_dim, edge_dim, node_dim, aggr)
            elif kind == "attention":
                self.inv = AttentionMessagePassing(node_dim, edge_dim, node_dim, heads)
            else:
                raise ValueError(f"stage-1 layer {kind!r}: use 'egnn', 'mp' or 'attention'")

    def forward(
        self, h: Tensor, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor
    ) -> Tuple[Tensor, Tensor]:
        egnn = self.egnn
        if egnn is not None:
            return egnn(h, x, edge_index, edge_attr, edge_weight, None)
        return self.inv(h, edge_index, edge_attr, edge_weight), x
