"""latentcv's own TorchScript operators, ``torch.ops.latentcv.*`` (cpp/latentcv/ops/).

Fused CPU kernels of the encoder's per-edge sums, forward and analytic backward, in the
shared library ``liblatentcv_ops.so`` installed next to the other compiled parts. The C++ core
links the same library, so a model that calls them runs in PLUMED exactly as in Python.

- ``shell_moments(edge_vec [E,3], rho [E,C], receiver [E], num_nodes, z_coeffs [L+1,K],
  xy_column) -> [num_nodes, C, K]``: per receiver, the sum of rho times the real spherical
  harmonics of the bond directions (:class:`latentcv.cv_models.layers.AngularMoments`).
- ``bond_order_sums(tn [N,C,K], edge_index [2,E], edge_weight [E], degree_of_column,
  num_degrees) -> ([N,C,D], [N,C,D])``: per receiver, the weighted sums of the bond-order
  correlations s_ij and s_ij^2 of unit moments.
- ``attention_aggregate(values [N,H,D], alpha [E,H], edge_index [2,E]) -> [N,H,D]``: per
  receiver, the attention-weighted sum of the senders' values
  (:class:`latentcv.cv_models.layers.AttentionMessagePassing` with node values).
- ``pair_geometry(centers [M,3], cells [B,3,3], node_frame [M], edge_index [2,P],
  edge_shift [P,3], cutoff, r_on, rbf_mu [R], rbf_width) -> (pairs [2,E], kept [E],
  d [E,3], r [E], w [E], rbf [E,R])``: the molecule graph's per-pair geometry in one pass,
  the pairs beyond the cutoff dropped (:meth:`latentcv.cv_models.model.HierarchicalEncoder.pair_geometry_reference`).
- ``orientation_invariants(vq [M,C,8], edge_index [2,E], dh [E,3], y2 [E,5]) -> [E,5C]``:
  per pair, the invariants of the two molecules' orientations (unit vectors and l = 2
  tensors per channel) and the pair direction
  (:meth:`latentcv.cv_models.model.HierarchicalEncoder.orientation_invariants_reference`).
- ``sphere_mass(share_weight [a], centers [a,3], cell [3,3], radius, ramp) -> [a]``: per
  molecule, the weights of every molecule within ``radius`` (minimum image, itself included)
  times a cosine step from 1 at ``radius - ramp`` to 0 at ``radius``, each pair visited once
  (:meth:`latentcv.cv_models.layers.LargestNucleus.frame`).

Each has a fake (shape-only) kernel (:mod:`latentcv.cv_models.native.fake_kernels`), so that
``torch.compile`` and ``make_fx`` trace a fused encoder with these operators as opaque calls.

The same functions written with core torch ops stay in :mod:`latentcv.cv_models.layers` (used on
other devices, and the reference the tests compare against).
"""

from __future__ import annotations

import torch

from latentcv.cv_models.native.paths import MissingNativeFile, native_lib_dir

LIBRARY = "liblatentcv_ops.so"
OPS_VERSION = 5  # kOpsVersion of cpp/latentcv/ops.h; recorded in exported models

_load_error: str | None = None
_loaded = False


def _registered() -> bool:
    try:
        torch.ops.latentcv.shell_moments
        return True
    except (AttributeError, RuntimeError):
        return False


def load_ops() -> None:
    """Registers ``torch.ops.latentcv.*`` (once per process). Raises MissingNativeFile with
    what to do when the library is not built."""
    global _loaded, _load_error
    if not (_loaded or _registered()):
        try:
            torch.ops.load_library(str(native_lib_dir() / LIBRARY))
        except (MissingNativeFile, OSError, RuntimeError) as e:
            _load_error = str(e)
            raise MissingNativeFile(
                f"latentcv's operators ({LIBRARY}) could not be loaded: {e}. Run `make build` in the latentcv checkout."
            ) from e
    _loaded = True
    from latentcv.cv_models.native.fake_kernels import register_fake_kernels

    register_fake_kernels()  # so that torch.compile / make_fx trace through them


def ops_available() -> bool:
    """Whether ``torch.ops.latentcv.*`` are registered (loading the library if needed)."""
    try:
        load_ops()
    except MissingNativeFile:
        return False
    return True
