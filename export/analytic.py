"""An analytic CV saved through the model contract: the chain's test model.

A smooth molecular coordination number, written in plain torch so that every part of the
chain (export, C++ core, PLUMED action, LAMMPS plugin) can be checked against an
independent formula before a trained network is put in its place.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from latentcv.cv_models.graphs import molecule_centers

from .deploy import ModelCard, save_deployable


class CoordinationCV(nn.Module):
    """Mean and mean square of the molecular coordination number.

    n_i = Σ_j f(|d_ij|), with f(r) = (1 − (r/r_c)²)³ for r < r_c and 0 beyond (value and
    first two derivatives vanish at r_c), d_ij the periodic centre–centre displacement.
    Outputs: [mean_i n_i, mean_i n_i²] (dimensionless).

    Args:
        atoms_per_molecule: atoms per molecule (contiguous in the input).
        cutoff: r_c in the model's length unit.
    """

    def __init__(self, atoms_per_molecule: int, cutoff: float):
        super().__init__()
        self.atoms_per_molecule = atoms_per_molecule
        self.cutoff = cutoff

    @torch.jit.export
    def molecule_centers(self, positions: Tensor, cell: Tensor) -> Tensor:
        """[N,3] atoms → [M,3] geometric centres, each molecule made whole around its first atom."""
        return molecule_centers(positions, cell, self.atoms_per_molecule)

    def forward(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        centers = self.molecule_centers(positions, cell)
        d = centers[edge_index[1]] + edge_shift @ cell - centers[edge_index[0]]
        x2 = (d * d).sum(dim=1) / (self.cutoff * self.cutoff)
        f = torch.clamp(1.0 - x2, min=0.0) ** 3
        n = torch.zeros(centers.shape[0], dtype=positions.dtype, device=positions.device)
        n = n.index_add(0, edge_index[0], f)
        return torch.stack([n.mean(), (n * n).mean()])


def coordination_card(atoms_per_molecule: int, cutoff: float, length_unit: str, dtype: str) -> ModelCard:
    return ModelCard(
        name="coordination",
        length_unit=length_unit,
        dtype=dtype,
        atoms_per_molecule=atoms_per_molecule,
        cutoff=cutoff,
        output_names=["mean", "meansq"],
        description="analytic test CV: mean and mean square molecular coordination number",
    )


def save_coordination_model(
    path, *, atoms_per_molecule: int = 1, cutoff: float = 1.5, length_unit: str = "lj", dtype: str = "float64"
):
    """Write the analytic coordination CV as a deployable model file; returns its path."""
    model = CoordinationCV(atoms_per_molecule, cutoff).eval()
    return save_deployable(model, coordination_card(atoms_per_molecule, cutoff, length_unit, dtype), path)
