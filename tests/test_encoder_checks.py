"""The encoder through the model test mixin (tests/model_checks.py): TorchScript script ->
save -> load, invariances, gradients with respect to positions and cell against finite
differences, in float64 and float32, on the CPU and on a GPU where torch sees one; three
configurations: one atom per molecule; dimers with EGNN, DiffPool and the attention
concatenation; trimers with attention layers and pooling, variational."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from latentcv.cv_models.config import ModelConfig
from latentcv.cv_models.graphs import frame_graph
from latentcv.cv_models.model import HierarchicalEncoder
from latentcv.cv_models.synthetic import fcc_positions, molecular_frame, skew_cell
from tests.invariance import transforms
from tests.model_checks import ModelChecks, Symmetry

torch.set_num_threads(1)
D = torch.float64

SMALL = dict(hidden=8, stage2_hidden=8, rbf=6, moment_channels=2, molecule_latent=4, heads=2)


class EncoderChecks(ModelChecks):
    """``forward(positions, cell, edge_index, edge_shift)`` on a small triclinic frame:
    invariant under translation, rotation, reflection, molecule and atom permutations,
    periodic images and equivalent cells (tests/invariance.py), each copy with its own
    neighbour list; gradients with respect to the positions and the cell."""

    differentiable = (0, 1)
    config: ModelConfig

    def build(self):
        torch.manual_seed(0)
        return HierarchicalEncoder(dataclasses.replace(self.config, dtype="float64")).eval()

    def with_graph(self, positions: np.ndarray, cell: np.ndarray) -> tuple:
        p, h = torch.tensor(positions, dtype=D), torch.tensor(cell, dtype=D)
        ei, shift = frame_graph(p, h, self.config.atoms_per_molecule, self.config.cutoff)
        return p, h, ei, shift

    def inputs(self) -> tuple:
        rng = np.random.default_rng(0)
        pts, cell = fcc_positions(2, 4 ** (1 / 3))
        tilted = skew_cell(cell)
        pts = pts @ np.linalg.inv(cell) @ tilted + rng.normal(size=pts.shape) * 0.08
        f = molecular_frame(pts, tilted, self.config.atoms_per_molecule, rng, ordered=False)
        return self.with_graph(f.positions, f.cell)

    def symmetries(self, inputs: tuple):
        positions, cell = inputs[0].numpy(), inputs[1].numpy()
        copies = transforms(positions, cell, self.config.atoms_per_molecule)
        return {name: Symmetry(self.with_graph(p, h)) for name, (p, h) in copies.items()}


class TestEncoderLJ(EncoderChecks):
    config = ModelConfig(atoms_per_molecule=1, **SMALL)


class TestEncoderDimerEGNNDiffPool(EncoderChecks):
    config = ModelConfig(
        atoms_per_molecule=2,
        stage1_layer="egnn",
        stage1_pool="diffpool",
        concat="attention",
        global_pool="mean",
        **SMALL,
    )


class TestEncoderTrimerAttention(EncoderChecks):
    config = ModelConfig(
        atoms_per_molecule=3,
        stage1_layer="attention",
        stage1_pool="attention",
        global_pool="sum",
        variational=True,
        **SMALL,
    )
