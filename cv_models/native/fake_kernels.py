"""Fake (shape-only) kernels of latentcv's operators, so that PyTorch's tracers see them.

``torch.compile`` and ``make_fx`` run a model on fake tensors (sizes, no data): every operator
they meet needs a kernel that returns outputs of the right shapes. These are those kernels
for ``torch.ops.latentcv.*`` and their backward operators (:mod:`latentcv.cv_models.native.ops`
has the shapes). With them, the encoder on its fused path traces into one graph whose
forward and backward call latentcv's operators as opaque calls: the C++ autograd of each
operator calls its backward operator through the dispatcher, which the tracer records.

``pair_geometry`` drops the pairs beyond the cutoff, so its number of output pairs is
data-dependent: an unbacked size for the tracer. Sizes stay concrete elsewhere (the
operators' ``int`` arguments are not ``SymInt``): traced graphs are for fixed numbers of
molecules and pairs (``torch.compile(dynamic=False)``), not for ``torch.export`` with
dynamic shapes, which keeps the core-torch path (docs/model-contract.md).
"""

from __future__ import annotations

import torch

__all__ = ["register_fake_kernels"]

_registered = False


def _shell_moments(edge_vec, rho, receiver, num_nodes, z_coeffs, xy_column):
    return edge_vec.new_empty((num_nodes, rho.shape[1], z_coeffs.shape[1]))


def _shell_moments_backward(grad, edge_vec, rho, receiver, z_coeffs, xy_column):
    return torch.empty_like(edge_vec), torch.empty_like(rho)


def _bond_order_sums(tn, edge_index, edge_weight, degree_of_column, num_degrees):
    s1 = tn.new_empty((tn.shape[0], tn.shape[1], num_degrees))
    return s1, torch.empty_like(s1)


def _bond_order_sums_backward(grad_s1, grad_s2, tn, edge_index, edge_weight, degree_of_column, num_degrees):
    return torch.empty_like(tn), torch.empty_like(edge_weight)


def _attention_aggregate(values, alpha, edge_index):
    return torch.empty_like(values)


def _attention_aggregate_backward(grad, values, alpha, edge_index):
    return torch.empty_like(values), torch.empty_like(alpha)


def _pair_geometry(centers, cells, node_frame, edge_index, edge_shift, cutoff, r_on, rbf_mu, rbf_width):
    e = torch.library.get_ctx().new_dynamic_size()  # pairs within the cutoff: known only from the data
    pairs, kept = edge_index.new_empty((2, e)), edge_index.new_empty((e,))
    d, r, w = centers.new_empty((e, 3)), centers.new_empty((e,)), centers.new_empty((e,))
    return pairs, kept, d, r, w, centers.new_empty((e, rbf_mu.shape[0]))


def _pair_geometry_backward(
    grad_d, grad_r, grad_w, grad_rbf, pairs, kept, d, r, rbf, edge_shift, node_frame, num_nodes, num_frames, *params
):  # params: cutoff, r_on, rbf_mu, rbf_width (no bearing on the shapes)
    return d.new_empty((num_nodes, 3)), d.new_empty((num_frames, 3, 3))


def _orientation_invariants(vq, edge_index, dh, y2):
    return vq.new_empty((edge_index.shape[1], 5 * vq.shape[1]))


def _orientation_invariants_backward(grad, vq, edge_index, dh, y2):
    return torch.empty_like(vq), torch.empty_like(dh), torch.empty_like(y2)


def _sphere_mass(share_weight, centers, cell, radius, ramp):
    return torch.empty_like(share_weight)


def _sphere_mass_backward(grad, share_weight, centers, cell, radius, ramp):
    return torch.empty_like(share_weight), torch.empty_like(centers), torch.empty_like(cell)


_KERNELS = {
    "shell_moments": _shell_moments,
    "shell_moments_backward": _shell_moments_backward,
    "bond_order_sums": _bond_order_sums,
    "bond_order_sums_backward": _bond_order_sums_backward,
    "attention_aggregate": _attention_aggregate,
    "attention_aggregate_backward": _attention_aggregate_backward,
    "pair_geometry": _pair_geometry,
    "pair_geometry_backward": _pair_geometry_backward,
    "orientation_invariants": _orientation_invariants,
    "orientation_invariants_backward": _orientation_invariants_backward,
    "sphere_mass": _sphere_mass,
    "sphere_mass_backward": _sphere_mass_backward,
}


def register_fake_kernels() -> None:
    """Registers the fake kernel of every ``latentcv::`` operator (once per process; the
    operators' library must be loaded: :func:`latentcv.cv_models.native.ops.load_ops`)."""
    global _registered
    if _registered:
        return
    for name, kernel in _KERNELS.items():
        torch.library.register_fake(f"latentcv::{name}", kernel)
    _registered = True
