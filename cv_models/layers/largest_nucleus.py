"""The size of the largest nucleus, smooth: a soft maximum over molecules of the nucleated
mass around each (``n_largest``).

``n_nucleus`` (:class:`~latentcv.cv_models.layers.pooling.NucleusCount`) sums every
molecule's share ``c_i`` over the box: two nuclei of n read 2n, like one of 2n. Here each
molecule counts the nucleated mass within a sphere of radius R around it,

.. math::
    m_i = \\sum_j u_j\\, g(r_{ij}),\\qquad
    n_\\mathrm{largest} = \\frac{\\sum_i u_i\\, m_i\\, e^{\\beta m_i}}{\\sum_i u_i\\, e^{\\beta m_i}},

with ``u_j = c_j s((c_j - ε)/ε)`` (``s`` the C¹ smoothstep: molecules with ``c_j ≤ ε`` count
exactly 0 and are left out of the pair sum, which then costs (nucleated molecules)², not
M²), ``g`` 1 within ``R - ramp`` and a cosine down to 0 at ``R``, and ``β`` the sharpness of
the soft maximum. A nucleus smaller than the sphere reads its size (at its centre); two
nuclei further apart than 2R read the size of one; a nucleus larger than the sphere reads
the sphere's content (it is then past any critical size). ~0 in a melt at every box size.
The pair sum is latentcv's fused CPU operator ``sphere_mass`` where it is built (each pair
once, no [a, a] tensor; value and gradients on 1 thread ~4 ms with 1 000 nucleated molecules
and ~10 ms with 2 000, where core torch takes ~0.15 s and ~0.9 s:
benchmarks/largest_nucleus_cost.py), else core torch.
Smooth (C¹) and invariant under rotations, translations and permutations, as ``c`` is.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from latentcv.cv_models.layers.fused import kernels_for, use_fused

__all__ = ["LargestNucleus"]


class LargestNucleus(nn.Module):
    """Soft maximum of the nucleated mass within ``radius`` of a molecule. No parameters.

    Args:
        radius: R, in the model's length unit.
        ramp: width of the cosine step of ``g`` below R (length unit).
        sharpness: β of the soft maximum, per molecule.
        floor: ε: shares ``c`` at or below it count 0 (the C¹ step spans ε to 2ε).
        fused: the pair sum ``m`` by latentcv's fused CPU operator ``sphere_mass``
            (:mod:`latentcv.cv_models.native.ops`: each pair once, no [a, a] tensor; None: when
            it is built); the result is the same.
    """

    def __init__(
        self,
        radius: float,
        ramp: float,
        sharpness: float = 0.2,
        floor: float = 0.05,
        fused: Optional[bool] = None,
    ) -> None:
        super().__init__()
        if not (radius > 0.0 and 0.0 < ramp <= radius and sharpness > 0.0 and 0.0 < floor < 0.5):
            raise ValueError(
                f"LargestNucleus: radius > 0, 0 < ramp <= radius, sharpness > 0, 0 < floor < 0.5; got "
                f"{radius}, {ramp}, {sharpness}, {floor}"
            )
        self.radius = float(radius)
        self.ramp = float(ramp)
        self.sharpness = float(sharpness)
        self.floor = float(floor)
        self.traceable = False  # export/aoti.py: every molecule in the pair sum (no data-dependent shapes)
        # the pair sum by latentcv's fused CPU operator (cv_models/native/ops.py), or in core torch
        # ([a, a, 3] tensors: other devices, traceable, ``fused = False``; the reference)
        self.fused = use_fused(fused)
        self.kernels = kernels_for(self.fused)

    def forward(self, share: Tensor, centers: Tensor, cells: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """share [M] (``NucleusCount.contributions``), centers [M, 3], cells [B, 3, 3] (rows
        a, b, c), batch [M] -> n_largest [B]."""
        out = []
        for g in range(num_graphs):
            mine = batch == g
            out.append(self.frame(share[mine], centers[mine], cells[g]))
        return torch.stack(out) if out else share.new_zeros(0)

    def frame(self, share: Tensor, centers: Tensor, cell: Tensor) -> Tensor:
        """n_largest of one frame: share [m], centers [m, 3], cell [3, 3] -> scalar."""
        t = ((share - self.floor) / self.floor).clamp(0.0, 1.0)
        u = share * t * t * (3.0 - 2.0 * t)  # exactly 0 at and below the floor
        if not self.traceable:
            active = torch.nonzero(share > self.floor).reshape(-1)
            u = u.index_select(0, active)
            centers = centers.index_select(0, active)
        if u.shape[0] == 0:
            return share.sum() * 0.0
        if self.fused and centers.device.type == "cpu" and not self.traceable:
            mass = self.kernels.sphere_mass(u, centers, cell, self.radius, self.ramp)
        else:
            mass = self.sphere_mass_reference(u, centers, cell)
        weight = u * torch.exp(self.sharpness * (mass - mass.max().detach()))
        return (weight * mass).sum() / (weight.sum() + 1e-30)

    def sphere_mass_reference(self, u: Tensor, centers: Tensor, cell: Tensor) -> Tensor:
        """m [a] = g @ u in core torch, over [a, a, 3] tensors (the fused operator's reference)."""
        d = centers.unsqueeze(0) - centers.unsqueeze(1)  # [a, a, 3]
        frac = d @ torch.linalg.inv(cell)
        d = (frac - torch.round(frac)) @ cell  # minimum image
        r = torch.sqrt((d * d).sum(-1) + 1e-12)
        x = ((r - (self.radius - self.ramp)) / self.ramp).clamp(0.0, 1.0)
        g = 0.5 * (1.0 + torch.cos(math.pi * x))
        return g @ u
