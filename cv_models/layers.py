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

All layers are TorchScript-scriptable, use core PyTorch ops (scatter through
``index_add_``) or, in :class:`AngularMoments` on CPU, latentcv's own operators
(:mod:`latentcv.cv_models.ops`, the same sums fused), and work in float32 and float64 (they follow the dtype of their
parameters). :class:`TopKPool` is offered for analysis only: it is not smooth and must not
be used in an exported encoder.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from latentcv.cv_models.ops import load_ops, ops_available

__all__ = [
    "scatter_sum",
    "scatter_mean",
    "MLP",
    "GaussianRBF",
    "MessagePassing",
    "AttentionMessagePassing",
    "EGNNLayer",
    "AngularMoments",
    "SolidHarmonics",
    "PairMLP",
    "gather",
    "padded_slots",
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


class PairMLP(nn.Module):
    r"""An MLP on the edge input ``[h_i, h_j, e_ij]``, computed without building it.

    The first layer is split, :math:`W[h_i, h_j, e] + b = (W_a h)_i + (W_b h)_j + W_c e + b`:
    the node terms are projected once per node and then gathered, so no per-edge tensor
    wider than ``hidden`` is formed (the concatenated input would be ``2F + D`` wide).
    Then SiLU and a second linear layer (and SiLU if ``activate_last``). ``hidden = 0``
    gives the linear map alone, ``(W_a h)_i + (W_b h)_j + W_c e + b`` of width ``out_dim``
    (then SiLU if ``activate_last``): the cheapest edge function.

    Args:
        node_dim: F; edge_dim: D (0: no edge input); hidden: width of the first layer
            (0: linear);
        out_dim: output width; use_i / use_j: include the receiver / sender features.
    Shapes: h [N, F], i [E], j [E], e [E, D] -> [E, out_dim].
    """

    def __init__(self, node_dim: int, edge_dim: int, hidden: int, out_dim: int, use_i: bool = True,
                 use_j: bool = True, activate_last: bool = False) -> None:
        super().__init__()
        if not (use_i or use_j):
            raise ValueError("PairMLP: use at least one of the receiver / sender features")
        self.use_i = use_i
        self.use_j = use_j
        self.linear = hidden <= 0
        width = out_dim if self.linear else hidden
        self.hidden = width
        self.activate_last = activate_last
        self.has_edge = edge_dim > 0
        self.lin_node = nn.Linear(node_dim, width * (int(use_i) + int(use_j)), bias=False)
        self.lin_edge = nn.Linear(max(edge_dim, 1), width)
        self.lin_out = nn.Identity() if self.linear else nn.Linear(hidden, out_dim)

    def forward(self, h: Tensor, i: Tensor, j: Tensor, e: Tensor) -> Tensor:
        p = self.lin_node(h)
        k = self.hidden
        if self.has_edge:
            y = self.lin_edge(e)
        else:
            y = self.lin_edge.bias.unsqueeze(0).expand(i.shape[0], k)
        if self.use_i and self.use_j:
            y = y + gather(p[:, :k], i) + gather(p[:, k:], j)
        elif self.use_i:
            y = y + gather(p, i)
        else:
            y = y + gather(p, j)
        if not self.linear:
            y = self.lin_out(torch.nn.functional.silu(y))
        if self.activate_last:
            y = torch.nn.functional.silu(y)
        return y


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

    def __init__(self, node_dim: int, edge_dim: int, out_dim: int, heads: int = 2, edge_values: bool = True,
                 attention_hidden: int = -1, fused: Optional[bool] = None) -> None:
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
        # CPU operator (cv_models/ops.py) instead of an [E, H, D] gather, product and scatter
        if fused is None:
            fused = ops_available()
        elif fused:
            load_ops()
        self.fused = bool(fused) and not edge_values
        self.kernels = FusedKernels() if self.fused else NoFusedKernels()

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


def _solid_harmonic_polys(l: int) -> List[Dict[Tuple[int, int, int], float]]:
    """Real solid harmonics of degree l as polynomials {(a, b, c): coef of x^a y^b z^c}.

    Order m = 0, 1c, 1s, ..., lc, ls. Normalised so that for unit vectors
    ``sum_m Y_lm(a) Y_lm(b) = P_l(a . b)`` (addition theorem without the 4 pi / (2l + 1)).
    Built exactly from ``Y_lm ∝ Q_l^m(z, r^2) Re/Im (x + i y)^m`` with
    ``Q_l^m = ((2l - 1) z Q_{l-1}^m - (l + m - 1) r^2 Q_{l-2}^m) / (l - m)``,
    ``Q_m^m = (2m - 1)!!``.
    """
    Poly = Dict[Tuple[int, int, int], float]

    def mul(p: Poly, q: Poly) -> Poly:
        out: Poly = {}
        for ka, va in p.items():
            for kb, vb in q.items():
                k = (ka[0] + kb[0], ka[1] + kb[1], ka[2] + kb[2])
                out[k] = out.get(k, 0.0) + va * vb
        return out

    def add(p: Poly, q: Poly, a: float = 1.0, b: float = 1.0) -> Poly:
        out: Poly = {k: a * v for k, v in p.items()}
        for k, v in q.items():
            out[k] = out.get(k, 0.0) + b * v
        return out

    x: Poly = {(1, 0, 0): 1.0}
    y: Poly = {(0, 1, 0): 1.0}
    z: Poly = {(0, 0, 1): 1.0}
    r2: Poly = {(2, 0, 0): 1.0, (0, 2, 0): 1.0, (0, 0, 2): 1.0}
    cm: Poly = {(0, 0, 0): 1.0}
    sm: Poly = {}
    out: List[Poly] = []
    for m in range(l + 1):
        if m > 0:
            cm, sm = add(mul(x, cm), mul(y, sm), 1.0, -1.0), add(mul(x, sm), mul(y, cm))
        dfact = 1.0
        for k in range(1, 2 * m, 2):
            dfact *= k
        q_prev: Poly = {}
        q: Poly = {(0, 0, 0): dfact}
        for k in range(m + 1, l + 1):
            q_new = add(mul(z, q), mul(r2, q_prev), (2 * k - 1) / (k - m), -(k + m - 1) / (k - m))
            q_prev, q = q, q_new
        f = math.sqrt(math.factorial(l - m) / math.factorial(l + m))
        if m == 0:
            out.append({k: f * v for k, v in q.items()})
        else:
            f *= math.sqrt(2.0)
            out.append({k: f * v for k, v in mul(q, cm).items()})
            out.append({k: f * v for k, v in mul(q, sm).items()})
    return out


def _unit_harmonic_factors(l: int) -> List[Tuple[Dict[int, float], Dict[Tuple[int, int], float]]]:
    """Real spherical harmonics of degree l on the unit sphere as products
    ``Y_lm = Z_lm(z) * X_lm(x, y)`` (same order and normalisation as
    :func:`_solid_harmonic_polys`): Z = normalised Q_l^m(z) with r^2 = 1 (powers of z),
    X = Re/Im (x + i y)^m (monomials x^a y^b)."""
    cm: Dict[Tuple[int, int], float] = {(0, 0): 1.0}
    sm: Dict[Tuple[int, int], float] = {}
    out: List[Tuple[Dict[int, float], Dict[Tuple[int, int], float]]] = []
    for m in range(l + 1):
        if m > 0:
            c2: Dict[Tuple[int, int], float] = {}
            s2: Dict[Tuple[int, int], float] = {}
            for (a, b), v in cm.items():  # (x + i y) * (c + i s)
                c2[(a + 1, b)] = c2.get((a + 1, b), 0.0) + v
                s2[(a, b + 1)] = s2.get((a, b + 1), 0.0) + v
            for (a, b), v in sm.items():
                c2[(a, b + 1)] = c2.get((a, b + 1), 0.0) - v
                s2[(a + 1, b)] = s2.get((a + 1, b), 0.0) + v
            cm, sm = c2, s2
        dfact = 1.0
        for k in range(1, 2 * m, 2):
            dfact *= k
        q_prev: Dict[int, float] = {}
        q: Dict[int, float] = {0: dfact}
        for k in range(m + 1, l + 1):
            q_new: Dict[int, float] = {}
            for p, v in q.items():
                q_new[p + 1] = q_new.get(p + 1, 0.0) + (2 * k - 1) / (k - m) * v
            for p, v in q_prev.items():
                q_new[p] = q_new.get(p, 0.0) - (k + m - 1) / (k - m) * v
            q_prev, q = q, q_new
        f = math.sqrt(math.factorial(l - m) / math.factorial(l + m))
        if m == 0:
            out.append(({p: f * v for p, v in q.items()}, dict(cm)))
        else:
            f *= math.sqrt(2.0)
            out.append(({p: f * v for p, v in q.items()}, dict(cm)))
            out.append(({p: f * v for p, v in q.items()}, dict(sm)))
    return out


class SolidHarmonics(nn.Module):
    r"""Real solid harmonics :math:`R_{lm}(u) = |u|^l Y_{lm}(\hat u)` of the given degrees,
    as exact polynomials in the components of u (smooth everywhere, finite gradients at
    u = 0 and for axis-aligned u).

    Normalised so that :math:`\sum_m Y_{lm}(\hat a) Y_{lm}(\hat b) = P_l(\hat a\cdot\hat b)`:
    the squared norm of a sum of them per degree is rotation invariant (Steinhardt q_l).

    ``unit=False``: any vectors, one product of the degree-l monomials with a constant
    matrix. ``unit=True``: for unit vectors only (cheaper, no indexing):
    :math:`Y = (Z\,A) \odot (W\,B)` with the powers Z = [1, z, ..., z^L], W = [1, Re, Im
    (x + i y)^m, m = 1..L] (recurrence) and constant A, B (Y_lm = Q_l^m(z) Re/Im (x+iy)^m).

    Args:
        degrees: the degrees l >= 0; unit: inputs are unit vectors.
    Shapes: u [E, 3] -> [E, K], K = sum(2l + 1); ``degree`` [K] gives each column's
        position in ``degrees``.
    """

    def __init__(self, degrees: List[int], unit: bool = False) -> None:
        super().__init__()
        if any(l < 0 for l in degrees):
            raise ValueError(f"SolidHarmonics: degrees must be >= 0, got {degrees}")
        self.degrees = list(degrees)
        self.unit = unit
        self.max_degree = max(degrees) if degrees else 0
        L = self.max_degree
        deg_of: List[int] = []
        if unit:
            factors: List[Tuple[Dict[int, float], Dict[Tuple[int, int], float]]] = []
            for n, l in enumerate(degrees):
                f = _unit_harmonic_factors(l)
                factors += f
                deg_of += [n] * len(f)
            za = torch.zeros(L + 1, len(factors), dtype=torch.float64)
            xb = torch.zeros(2 * L + 1, len(factors), dtype=torch.float64)  # rows 1, C1, S1, C2, ...
            col = 0
            for l in degrees:
                for m in range(l + 1):
                    for part in ((0,) if m == 0 else (0, 1)):
                        zp = factors[col][0]
                        for p, v in zp.items():
                            za[p, col] = v
                        xb[0 if m == 0 else 2 * m - 1 + part, col] = 1.0
                        col += 1
            self.register_buffer("exps", torch.zeros(1, 3, dtype=torch.long))
            self.register_buffer("matrix", za)
            self.register_buffer("matrix_xy", xb)
            self.out_dim = len(factors)
        else:
            polys: List[Dict[Tuple[int, int, int], float]] = []
            for n, l in enumerate(degrees):
                p = _solid_harmonic_polys(l)
                polys += p
                deg_of += [n] * len(p)
            monos = sorted({k for p in polys for k in p})
            col = {k: c for c, k in enumerate(monos)}
            mat = torch.zeros(len(monos), len(polys), dtype=torch.float64)
            for c, p in enumerate(polys):
                for k, v in p.items():
                    mat[col[k], c] = v
            self.register_buffer("exps", torch.tensor(monos if monos else [[0, 0, 0]], dtype=torch.long).view(-1, 3))
            self.register_buffer("matrix", mat)
            self.register_buffer("matrix_xy", torch.zeros(1, 1, dtype=torch.float64))
            self.out_dim = len(polys)
        self.register_buffer("degree", torch.tensor(deg_of, dtype=torch.long))

    def forward(self, u: Tensor) -> Tensor:
        if self.unit:
            # Re/Im (x + i y)^m by the complex-product recurrence, z^k by products
            x = u[:, 0]
            y = u[:, 1]
            z = u[:, 2]
            one = torch.ones_like(x)
            cs: List[Tensor] = [one]
            zs: List[Tensor] = [one]
            c = one
            s = torch.zeros_like(x)
            for _ in range(self.max_degree):
                c, s = x * c - y * s, x * s + y * c
                cs.append(c)
                cs.append(s)
                zs.append(zs[-1] * z)
            zm = torch.matmul(torch.stack(zs, dim=1), self.matrix.to(u.dtype))
            if len(self.degrees) == 1 and self.max_degree > 0:
                # one degree: the columns are already [1, C1, S1, ..., CL, SL]
                return zm * torch.stack(cs, dim=1)
            return zm * torch.matmul(torch.stack(cs, dim=1), self.matrix_xy.to(u.dtype))
        # powers u^k, k = 0..L, by repeated products (pow gives NaN gradients at 0)
        powers: List[Tensor] = [torch.ones_like(u)]
        for _ in range(self.max_degree):
            powers.append(powers[-1] * u)
        p = torch.stack(powers, dim=1)  # [E, L+1, 3]
        mono = p[:, self.exps[:, 0], 0] * p[:, self.exps[:, 1], 1] * p[:, self.exps[:, 2], 2]
        return torch.matmul(mono, self.matrix.to(u.dtype))


class AngularMoments(nn.Module):
    r"""Rotation-invariant angular descriptors of the neighbour shell (learned Steinhardt).

    For each node i, channel c and degree l, with learned radial/species weights
    :math:`\rho_c(r_{ij}, h_j)` and real spherical harmonics of the bond direction:

    .. math::
        T^{c}_{i,lm} = \sum_j w_{ij} \rho_{c,ij} Y_{lm}(\hat d_{ij}),\quad
        q^{c,l}_i = \frac{\sum_m (T^{c}_{i,lm})^2}{(1 + \sum_j w_{ij})^2}
        = \frac{\sum_{j,k} w\rho_j\, w\rho_k\, P_l(\hat d_{ij}\cdot\hat d_{ik})}{(1 + \sum_j w_{ij})^2}

    (Steinhardt, Nelson & Ronchetti 1983: l = 6 is the q6 of crystal detection), plus the
    radial channel :math:`q^{c,0}_i = \sum_j w_{ij}\rho_{c,ij} / (1 + \sum_j w_{ij})`.
    Degrees: ``degrees`` if given, else ``max_rank, max_rank - step, ...`` down to 1
    (step 2: l = 6, 4, 2).
    Only (2l + 1) numbers per degree and edge are formed (the full moment tensors
    d^{⊗n} of degree n would need (n + 1)(n + 2) / 2 and mix degrees).

    With ``bond_order`` the layer also returns the bond-order correlations of the
    neighbour shell that the ten Wolde solid-bond criterion thresholds (ten Wolde,
    Ruiz-Montero & Frenkel 1996): with :math:`\hat T_i = T_i / \sqrt{|T_i|^2 + \epsilon}`
    per channel and degree, :math:`s_{ij} = \hat T_i \cdot \hat T_j` and

    .. math::
        \bar s_i = \frac{\sum_j w_{ij} s_{ij}}{1 + \sum_j w_{ij}},\quad
        \overline{s^2}_i = \frac{\sum_j w_{ij} s_{ij}^2}{1 + \sum_j w_{ij}}

    (rotation invariant, smooth: switched weights, no threshold).

    Args:
        node_dim: F of h; rbf_dim: R of the radial basis; channels: C; max_rank: L;
        step: spacing of the degrees; degrees: explicit degrees l >= 1 (overrides both);
        bond_order: append :math:`\bar s` and :math:`\overline{s^2}` per channel and degree.
        fused: sum the moments and bond-order terms with latentcv's fused CPU operators
            (:mod:`latentcv.cv_models.ops`; None: when they are built); the result is the same.
    Shapes: h [N, F], edge_index [2, E], edge_vec [E, 3] (d_ij), edge_rbf [E, R],
        edge_weight [E] -> [N, C * (1 + D)] (D degrees), or [N, C * (1 + 3 D)] with
        ``bond_order``.
    """

    def __init__(self, node_dim: int, rbf_dim: int, channels: int = 4, max_rank: int = 6, step: int = 2,
                 degrees: Optional[List[int]] = None, bond_order: bool = False, fused: Optional[bool] = None) -> None:
        super().__init__()
        self.channels = channels
        self.bond_order = bond_order
        self.max_rank = max_rank
        if degrees:
            self.degrees: List[int] = sorted(set(int(l) for l in degrees))
        else:
            self.degrees = list(range(max_rank, 0, -max(step, 1)))[::-1]
        self.n_degrees = len(self.degrees)
        self.out_dim = channels * (1 + (3 if bond_order else 1) * self.n_degrees)
        self.harmonics = SolidHarmonics(self.degrees, unit=True)
        # [K, D] one-hot of each harmonic column's degree: sums over m within a degree as a
        # matmul (much faster than index_add_ along an inner dimension, also backwards)
        onehot = torch.zeros(int(self.harmonics.degree.shape[0]), self.n_degrees)
        onehot[torch.arange(onehot.shape[0]), self.harmonics.degree] = 1.0
        self.register_buffer("degree_onehot", onehot, persistent=False)  # derived: not in checkpoints
        # rho_c = (W rbf)_c + (V h)_j,c + b_c: a linear combination of the radial basis
        # (a smooth radial function per channel) shifted per sender species/embedding
        self.rho = PairMLP(node_dim, rbf_dim, 0, channels, use_i=False)
        # the fused CPU kernels of latentcv's own operators (cv_models/ops.py), or the same
        # sums written with core torch ops (other devices; ``fused = False``: the reference)
        self.xy_column: List[int] = [int(c) for c in self.harmonics.matrix_xy.argmax(0).tolist()]
        self.degree_of_column: List[int] = [int(d) for d in self.harmonics.degree.tolist()]
        if fused is None:
            fused = ops_available()
        elif fused:
            load_ops()
        self.fused = bool(fused)
        self.kernels = FusedKernels() if self.fused else NoFusedKernels()

    def shell_moments_reference(self, edge_vec: Tensor, rho: Tensor, i: Tensor, n: int) -> Tensor:
        """T [n, C, K] with core torch ops: on a padded [n, slots] layout (one bmm) rather
        than an [E, C, K] outer product followed by a scatter. The bond vectors are padded
        (3 numbers per slot) before the harmonics are evaluated; empty slots have d = 0 and
        rho = 0, so they add nothing (and get zero gradient)."""
        pos, slots = padded_slots(i, n)
        ns = n * slots
        dp = torch.zeros(ns, 3, dtype=edge_vec.dtype, device=edge_vec.device).index_copy(0, pos, edge_vec)
        rp = torch.zeros(ns, self.channels, dtype=rho.dtype, device=rho.device).index_copy(0, pos, rho)
        r = torch.sqrt((dp * dp).sum(-1) + 1e-30)
        y = self.harmonics(dp / r.unsqueeze(-1))  # [n * slots, K]
        k = y.shape[1]
        return torch.bmm(rp.view(n, slots, self.channels).transpose(1, 2), y.view(n, slots, k))  # [n, C, K]

    def bond_order_sums_reference(self, tn: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tuple[Tensor, Tensor]:
        """(sum_j w s_ij, sum_j w s_ij^2) [n, C, D] per receiver, with core torch ops."""
        i = edge_index[0]
        onehot = self.degree_onehot.to(tn.dtype)
        s = torch.matmul(tn.index_select(0, i) * tn.index_select(0, edge_index[1]), onehot)  # [E, C, D]
        ws = edge_weight.view(-1, 1, 1) * s
        n = tn.shape[0]
        return scatter_sum(ws, i, n), scatter_sum(ws * s, i, n)

    def forward(
        self, h: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_rbf: Tensor, edge_weight: Tensor
    ) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        n = h.shape[0]
        rho = self.rho(h, i, j, edge_rbf) * edge_weight.unsqueeze(-1)  # [E, C]
        # T_i = sum_j rho_ij Y(d_ij) per receiver
        fused = self.fused and edge_vec.device.type == "cpu"
        if fused:
            t = self.kernels.shell_moments(edge_vec, rho, i, n, self.harmonics.matrix.to(edge_vec.dtype), self.xy_column)
        else:
            t = self.shell_moments_reference(edge_vec, rho, i, n)
        q = torch.zeros(n, self.channels, self.n_degrees, dtype=t.dtype, device=t.device)
        q = q.index_add_(2, self.harmonics.degree, t * t)
        norm = 1.0 + scatter_sum(edge_weight, i, n)
        q0 = scatter_sum(rho, i, n) / norm.unsqueeze(-1)
        parts = [q0, (q / (norm * norm).view(-1, 1, 1)).reshape(n, self.channels * self.n_degrees)]
        if self.bond_order:
            # unit moments per (channel, degree), then s_ij summed over m within each degree
            onehot = self.degree_onehot.to(t.dtype)
            tn = t * torch.matmul(torch.rsqrt(q + 1e-8), onehot.t())  # [n, C, K]
            if fused:
                s1, s2 = self.kernels.bond_order_sums(tn, edge_index, edge_weight, self.degree_of_column, self.n_degrees)
            else:
                s1, s2 = self.bond_order_sums_reference(tn, edge_index, edge_weight)
            parts += [(s1 / norm.view(-1, 1, 1)).reshape(n, -1), (s2 / norm.view(-1, 1, 1)).reshape(n, -1)]
        return torch.cat(parts, dim=-1)


class FusedKernels(nn.Module):
    """latentcv's fused CPU operators (``torch.ops.latentcv``, :mod:`latentcv.cv_models.ops`; no state)."""

    def shell_moments(self, edge_vec: Tensor, rho: Tensor, receiver: Tensor, n: int, z_coeffs: Tensor,
                      xy_column: List[int]) -> Tensor:
        return torch.ops.latentcv.shell_moments(edge_vec, rho, receiver, n, z_coeffs, xy_column)

    def bond_order_sums(self, tn: Tensor, edge_index: Tensor, edge_weight: Tensor, degree_of_column: List[int],
                        num_degrees: int) -> Tuple[Tensor, Tensor]:
        return torch.ops.latentcv.bond_order_sums(tn, edge_index, edge_weight, degree_of_column, num_degrees)

    def attention_aggregate(self, values: Tensor, alpha: Tensor, edge_index: Tensor) -> Tensor:
        return torch.ops.latentcv.attention_aggregate(values, alpha, edge_index)

    def pair_geometry(self, centers: Tensor, cells: Tensor, node_frame: Tensor, edge_index: Tensor,
                      edge_shift: Tensor, cutoff: float, r_on: float, rbf_mu: Tensor,
                      rbf_width: float) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        pairs, kept, d, r, w, rbf = torch.ops.latentcv.pair_geometry(centers, cells, node_frame, edge_index, edge_shift,
                                                                     cutoff, r_on, rbf_mu, rbf_width)
        return pairs, d, r, w, rbf


class NoFusedKernels(nn.Module):
    """Stands in for :class:`FusedKernels` where the operators are not built (never called)."""

    def shell_moments(self, edge_vec: Tensor, rho: Tensor, receiver: Tensor, n: int, z_coeffs: Tensor,
                      xy_column: List[int]) -> Tensor:
        raise RuntimeError("latentcv: fused operators not built")

    def bond_order_sums(self, tn: Tensor, edge_index: Tensor, edge_weight: Tensor, degree_of_column: List[int],
                        num_degrees: int) -> Tuple[Tensor, Tensor]:
        raise RuntimeError("latentcv: fused operators not built")

    def attention_aggregate(self, values: Tensor, alpha: Tensor, edge_index: Tensor) -> Tensor:
        raise RuntimeError("latentcv: fused operators not built")

    def pair_geometry(self, centers: Tensor, cells: Tensor, node_frame: Tensor, edge_index: Tensor,
                      edge_shift: Tensor, cutoff: float, r_on: float, rbf_mu: Tensor,
                      rbf_width: float) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        raise RuntimeError("latentcv: fused operators not built")


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
