"""Graph layers of latentcv: message passing, attention, EGNN, angular moments, poolings.

One module per kind: :mod:`.scatter` (the sums), :mod:`.mlp`, :mod:`.message_passing`,
:mod:`.harmonics` (solid harmonics, angular moments), :mod:`.fused` (latentcv's own
operators), :mod:`.pooling` (and the decoder), :mod:`.largest_nucleus`; every public name is importable from here.

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
(:mod:`latentcv.cv_models.native.ops`, the same sums fused), and work in float32 and float64 (they follow the dtype of their
parameters). :class:`TopKPool` is offered for analysis only: it is not smooth and must not
be used in an exported encoder.
"""

from __future__ import annotations

from latentcv.cv_models.layers.fused import FusedKernels, NoFusedKernels
from latentcv.cv_models.layers.harmonics import AngularMoments, SolidHarmonics
from latentcv.cv_models.layers.largest_nucleus import LargestNucleus
from latentcv.cv_models.layers.message_passing import AttentionMessagePassing, EGNNLayer, MessagePassing, Stage1Block
from latentcv.cv_models.layers.mlp import GaussianRBF, MLP, PairMLP
from latentcv.cv_models.layers.pooling import (
    AttentionPool,
    DiffPool,
    InnerProductDecoder,
    MeanPool,
    NucleusCount,
    SumPool,
    TopKPool,
    make_pool,
)
from latentcv.cv_models.layers.scatter import gather, padded_slots, scatter_mean, scatter_sum

__all__ = [
    "scatter_sum",
    "scatter_mean",
    "MLP",
    "GaussianRBF",
    "MessagePassing",
    "AttentionMessagePassing",
    "EGNNLayer",
    "Stage1Block",
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
    "NucleusCount",
    "LargestNucleus",
    "make_pool",
    "FusedKernels",
    "NoFusedKernels",
]
