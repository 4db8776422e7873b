"""Real solid harmonics and the angular moments (bond-order invariants) of a neighbourhood."""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from latentcv.cv_models.layers.fused import kernels_for, use_fused
from latentcv.cv_models.layers.mlp import PairMLP
from latentcv.cv_models.layers.scatter import padded_slots, scatter_sum


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
                    for part in (0,) if m == 0 else (0, 1):
                        zp = factors[col][0]
                        for p, v in zp.items():
                            za[p, col] = v
                        xb[0 if m == 0 else 2 * m - 1 + part, col] = 1.0
                        col += 1
            self.register_buffer("exps", torch.zeros(1, 3, dtype=torch.long))
            self.monomial_exponents = [[0, 0, 0]]  # unused by the unit path
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
            # the monomials x^a y^b z^c as [a, b, c] (python ints, for the products in forward)
            self.monomial_exponents: List[List[int]] = [[int(k) for k in e] for e in self.exps.tolist()]
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
        # each monomial by products of the components (pow gives NaN gradients at 0; products
        # of [E] columns are cheaper forward and backward than gathers from a powers table)
        cols: List[Tensor] = []
        for e in self.monomial_exponents:
            t: Optional[Tensor] = None
            for a in range(3):
                for _ in range(e[a]):
                    if t is None:
                        t = u[:, a]
                    else:
                        t = t * u[:, a]
            cols.append(torch.ones_like(u[:, 0]) if t is None else t)
        return torch.matmul(torch.stack(cols, dim=1), self.matrix.to(u.dtype))


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
            (:mod:`latentcv.cv_models.native.ops`; None: when they are built); the result is the same.
    Shapes: h [N, F], edge_index [2, E], edge_vec [E, 3] (d_ij), edge_rbf [E, R],
        edge_weight [E] -> [N, C * (1 + D)] (D degrees), or [N, C * (1 + 3 D)] with
        ``bond_order``.
    """

    def __init__(
        self,
        node_dim: int,
        rbf_dim: int,
        channels: int = 4,
        max_rank: int = 6,
        step: int = 2,
        degrees: Optional[List[int]] = None,
        bond_order: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
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
        # the fused CPU kernels of latentcv's own operators (cv_models/native/ops.py), or the same
        # sums written with core torch ops (other devices; ``fused = False``: the reference)
        self.xy_column: List[int] = [int(c) for c in self.harmonics.matrix_xy.argmax(0).tolist()]
        self.degree_of_column: List[int] = [int(d) for d in self.harmonics.degree.tolist()]
        self.fused = use_fused(fused)
        self.kernels = kernels_for(self.fused)
        # traceable (export/aoti.py): the moments as one scatter, without the padded layout's
        # data-dependent slot count, so that torch.export traces with symbolic sizes
        self.traceable = False

    def shell_moments_scatter(self, edge_vec: Tensor, rho: Tensor, i: Tensor, n: int) -> Tensor:
        """T [n, C, K] as ``sum_e rho[e, c] Y_k(d_e)`` scattered to receivers (no data-dependent
        shapes; the compiler fuses the [E, C, K] product into the scatter)."""
        r = torch.sqrt((edge_vec * edge_vec).sum(-1) + 1e-30)
        y = self.harmonics(edge_vec / r.unsqueeze(-1))  # [E, K]
        return scatter_sum(rho.unsqueeze(-1) * y.unsqueeze(1), i, n)

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

    def invariants(self, t: Tensor) -> Tensor:
        """q [n, C, D]: sum over m of t^2 within each degree (the Steinhardt invariants, up to
        normalisation) of the moments t [n, C, K]. One degree (the default, l = 6): a sum
        over the last dimension, whose backward is a broadcast, not an inner-dimension gather."""
        if self.n_degrees == 1:
            return (t * t).sum(-1, keepdim=True)
        q = torch.zeros(t.shape[0], self.channels, self.n_degrees, dtype=t.dtype, device=t.device)
        return q.index_add_(2, self.harmonics.degree, t * t)

    def unit_moments(self, t: Tensor, q: Tensor) -> Tensor:
        """t [n, C, K] divided by sqrt(q + 1e-8) of its degree (q [n, C, D])."""
        if self.n_degrees == 1:
            return t * torch.rsqrt(q + 1e-8)
        return t * torch.matmul(torch.rsqrt(q + 1e-8), self.degree_onehot.to(t.dtype).t())

    def forward(self, h: Tensor, edge_index: Tensor, edge_vec: Tensor, edge_rbf: Tensor, edge_weight: Tensor) -> Tensor:
        i = edge_index[0]
        j = edge_index[1]
        n = h.shape[0]
        rho = self.rho(h, i, j, edge_rbf) * edge_weight.unsqueeze(-1)  # [E, C]
        # T_i = sum_j rho_ij Y(d_ij) per receiver
        fused = self.fused and edge_vec.device.type == "cpu"
        if fused:
            t = self.kernels.shell_moments(
                edge_vec, rho, i, n, self.harmonics.matrix.to(edge_vec.dtype), self.xy_column
            )
        elif self.traceable:
            t = self.shell_moments_scatter(edge_vec, rho, i, n)
        else:
            t = self.shell_moments_reference(edge_vec, rho, i, n)
        q = self.invariants(t)  # [n, C, D]
        norm = 1.0 + scatter_sum(edge_weight, i, n)
        q0 = scatter_sum(rho, i, n) / norm.unsqueeze(-1)
        parts = [q0, (q / (norm * norm).view(-1, 1, 1)).reshape(n, self.channels * self.n_degrees)]
        if self.bond_order:
            # unit moments per (channel, degree), then s_ij summed over m within each degree
            tn = self.unit_moments(t, q)  # [n, C, K]
            if fused:
                s1, s2 = self.kernels.bond_order_sums(
                    tn, edge_index, edge_weight, self.degree_of_column, self.n_degrees
                )
            else:
                s1, s2 = self.bond_order_sums_reference(tn, edge_index, edge_weight)
            parts += [(s1 / norm.view(-1, 1, 1)).reshape(n, -1), (s2 / norm.view(-1, 1, 1)).reshape(n, -1)]
        return torch.cat(parts, dim=-1)
