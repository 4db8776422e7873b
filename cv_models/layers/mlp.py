"""Feed-forward pieces: the MLP, the pair MLP over edges and the Gaussian radial basis."""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from latentcv.cv_models.layers.scatter import gather


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

    def __init__(
        self,
        node_dim: int,
        edge_dim: int,
        hidden: int,
        out_dim: int,
        use_i: bool = True,
        use_j: bool = True,
        activate_last: bool = False,
    ) -> None:
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
