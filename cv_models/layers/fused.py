"""latentcv's own fused CPU operators behind one module interface, and its stand-in where they are not built."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from latentcv.cv_models.native.ops import load_ops, ops_available


class FusedKernels(nn.Module):
    """latentcv's fused CPU operators (``torch.ops.latentcv``, :mod:`latentcv.cv_models.native.ops`; no state)."""

    def shell_moments(
        self, edge_vec: Tensor, rho: Tensor, receiver: Tensor, n: int, z_coeffs: Tensor, xy_column: List[int]
    ) -> Tensor:
        return torch.ops.latentcv.shell_moments(edge_vec, rho, receiver, n, z_coeffs, xy_column)

    def bond_order_sums(
        self, tn: Tensor, edge_index: Tensor, edge_weight: Tensor, degree_of_column: List[int], num_degrees: int
    ) -> Tuple[Tensor, Tensor]:
        return torch.ops.latentcv.bond_order_sums(tn, edge_index, edge_weight, degree_of_column, num_degrees)

    def attention_aggregate(self, values: Tensor, alpha: Tensor, edge_index: Tensor) -> Tensor:
        return torch.ops.latentcv.attention_aggregate(values, alpha, edge_index)

    def pair_geometry(
        self,
        centers: Tensor,
        cells: Tensor,
        node_frame: Tensor,
        edge_index: Tensor,
        edge_shift: Tensor,
        cutoff: float,
        r_on: float,
        rbf_mu: Tensor,
        rbf_width: float,
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        pairs, kept, d, r, w, rbf = torch.ops.latentcv.pair_geometry(
            centers, cells, node_frame, edge_index, edge_shift, cutoff, r_on, rbf_mu, rbf_width
        )
        return pairs, d, r, w, rbf

    def sphere_mass(self, share_weight: Tensor, centers: Tensor, cell: Tensor, radius: float, ramp: float) -> Tensor:
        return torch.ops.latentcv.sphere_mass(share_weight, centers, cell, radius, ramp)

    def orientation_invariants(self, vq: Tensor, edge_index: Tensor, dh: Tensor, y2: Tensor) -> Tensor:
        return torch.ops.latentcv.orientation_invariants(vq, edge_index, dh, y2)


class NoFusedKernels(nn.Module):
    """Stands in for :class:`FusedKernels` where the operators are not built (never called)."""

    def shell_moments(
        self, edge_vec: Tensor, rho: Tensor, receiver: Tensor, n: int, z_coeffs: Tensor, xy_column: List[int]
    ) -> Tensor:
        raise RuntimeError("latentcv: fused operators not built")

    def bond_order_sums(
        self, tn: Tensor, edge_index: Tensor, edge_weight: Tensor, degree_of_column: List[int], num_degrees: int
    ) -> Tuple[Tensor, Tensor]:
        raise RuntimeError("latentcv: fused operators not built")

    def attention_aggregate(self, values: Tensor, alpha: Tensor, edge_index: Tensor) -> Tensor:
        raise RuntimeError("latentcv: fused operators not built")

    def pair_geometry(
        self,
        centers: Tensor,
        cells: Tensor,
        node_frame: Tensor,
        edge_index: Tensor,
        edge_shift: Tensor,
        cutoff: float,
        r_on: float,
        rbf_mu: Tensor,
        rbf_width: float,
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        raise RuntimeError("latentcv: fused operators not built")

    def sphere_mass(self, share_weight: Tensor, centers: Tensor, cell: Tensor, radius: float, ramp: float) -> Tensor:
        raise RuntimeError("latentcv: fused operators not built")

    def orientation_invariants(self, vq: Tensor, edge_index: Tensor, dh: Tensor, y2: Tensor) -> Tensor:
        raise RuntimeError("latentcv: fused operators not built")


def use_fused(requested: Optional[bool] = None) -> bool:
    """The one "use latentcv's fused operators?" choice of every module that has them:
    None = when the library is built (loading it); True = required (MissingNativeFile
    naming `make build` when it is not); False = never (the core-torch path)."""
    if requested is None:
        return ops_available()
    if requested:
        load_ops()
    return bool(requested)


def kernels_for(fused: bool) -> nn.Module:
    """The kernels a module calls: :class:`FusedKernels`, or the stand-in when not fused."""
    return FusedKernels() if fused else NoFusedKernels()
