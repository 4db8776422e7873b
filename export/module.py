"""The deployable module: a trained encoder plus the derived CVs, with ONE table of its
named outputs (:data:`DERIVED_OUTPUTS`) from which ``output_names`` and the metadata derive.

Outputs (K = latent_dim + 4), in this order:

- ``z0 .. z{d-1}``: the latent coordinates (posterior mean), dimensionless;
- ``proj``: projection of z on the melt → crystal centroid axis,
  ``(z - c_melt)·(c_crys - c_melt) / |c_crys - c_melt|²`` (0 at the melt centroid, 1 at
  the crystal centroid);
- ``dcrys``: distance to the crystal centroid in units of the centroid separation,
  ``sqrt(|z - c_crys|² / |c_crys - c_melt|² + 1e-4)`` (0.01 at the crystal, ≈1 at the melt
  centroid; the 1e-4 rounds the cone of |z - c_crys| off into a smooth minimum, so that
  value and gradient stay smooth near the crystal centroid);
- ``n_crystal``: the extensive number of crystal-like molecules ``Σ_m p_m``;
- ``n_nucleus``: the crystal-like molecules among crystal-like neighbours
  (``NucleusCount`` on the molecule graph): ~0 in a melt at any size, blind to scattered
  crystal-like molecules, the size of the nuclei (a nucleus's interior fully, its surface
  in part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor, nn

__all__ = ["LatentCVModule", "OutputSpec", "DERIVED_OUTPUTS", "DCRYS_EPS2", "output_specs"]

DCRYS_EPS2 = 1e-4  # dcrys >= 0.01: quadratic, not a cone, within ~0.01 separation of the crystal centroid


@dataclass(frozen=True)
class OutputSpec:
    """One named output of a deployed model: its name, a one-line meaning, and whether it is
    extensive (grows with the number of molecules; its SIGMA hint holds for one size)."""

    name: str
    meaning: str
    extensive: bool = False


# after the latent coordinates z0..z{d-1}, in this order
DERIVED_OUTPUTS: Tuple[OutputSpec, ...] = (
    OutputSpec("proj", "projection on the melt->crystal centroid axis (melt 0, crystal 1)"),
    OutputSpec("dcrys", "distance to the crystal centroid in units of the centroid separation"),
    OutputSpec("n_crystal", "number of crystal-like molecules", extensive=True),
    OutputSpec("n_nucleus", "crystal-like molecules among crystal-like neighbours (nucleus size)"),
)


def output_specs(latent_dim: int) -> List[OutputSpec]:
    """All K = latent_dim + 4 outputs of a deployed model, in order."""
    return [OutputSpec(f"z{k}", "latent coordinate") for k in range(latent_dim)] + list(DERIVED_OUTPUTS)


class LatentCVModule(nn.Module):
    """Trained encoder + derived CVs; what ``latentcv export`` scripts and saves.

    Args:
        encoder: a trained ``HierarchicalEncoder`` with centroids set (``has_centroids``).
    ``forward(positions[N,3], cell[3,3], edge_index[2,P], edge_shift[P,3]) -> [K]`` with
    the outputs of :func:`output_names` (module docstring); ``molecule_centers`` is the
    encoder's.
    """

    def __init__(self, encoder: nn.Module, length_scale: float = 1.0) -> None:
        super().__init__()
        if not length_scale > 0.0:
            raise ValueError("the length scale must be positive")
        if float(encoder.has_centroids.reshape(-1)[0]) != 1.0:
            raise ValueError(
                "the encoder has no crystal/melt centroids (they are set at the end of training from "
                "frames labelled crystal and melt); retrain with labelled crystal and melt frames"
            )
        crys = encoder.crystal_centroid.detach().clone()
        melt = encoder.melt_centroid.detach().clone()
        bad = [
            n
            for n, t in [*encoder.named_parameters(), ("crystal_centroid", crys), ("melt_centroid", melt)]
            if t.is_floating_point() and not bool(torch.isfinite(t).all())
        ]
        if bad:
            raise ValueError(
                f"the model's {bad[0]} is not finite (NaN or inf; {len(bad)} tensor(s)): its training "
                "diverged; retrain with a lower [training] lr (latentcv train now stops such a run)"
            )
        axis = crys - melt
        sep2 = float((axis * axis).sum())
        if not sep2 > 0.0:
            raise ValueError(
                "the crystal and melt centroids of the latent space coincide: the model does not "
                "separate the phases; train longer or with more data before exporting"
            )
        self.encoder = encoder
        # input length unit per training length unit (e.g. sigma = 3.405 A for an lj model deployed in A)
        self.length_scale = float(length_scale)
        self.cutoff = float(encoder.cutoff) * self.length_scale  # in the input length unit
        self.latent_dim = int(encoder.latent_dim)
        self.dcrys_eps2 = float(DCRYS_EPS2)
        self.register_buffer("crystal_centroid", crys)
        self.register_buffer("melt_centroid", melt)
        self.register_buffer("axis", axis / sep2)  # proj = (z - melt) . axis
        self.register_buffer("inv_separation", torch.tensor(1.0 / math.sqrt(sep2), dtype=crys.dtype))
        self._names: List[str] = [o.name for o in output_specs(self.latent_dim)]

    @torch.jit.export
    def output_names(self) -> List[str]:
        """``z0..z{d-1}, proj, dcrys, n_crystal, n_nucleus``."""
        return self._names

    @torch.jit.export
    def derived(self, z: Tensor, n_crystal: Tensor, n_nucleus: Tensor) -> Tensor:
        """All K outputs [B, K] from latents ``z`` [B, d] and counts ``n_crystal``, ``n_nucleus`` [B]."""
        proj = ((z - self.melt_centroid) * self.axis).sum(-1)
        dz = (z - self.crystal_centroid) * self.inv_separation
        dcrys = torch.sqrt((dz * dz).sum(-1) + self.dcrys_eps2)
        return torch.cat(
            [z, proj.unsqueeze(-1), dcrys.unsqueeze(-1), n_crystal.unsqueeze(-1), n_nucleus.unsqueeze(-1)], dim=-1
        )

    def forward(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        return self.outputs(positions, cell, edge_index, edge_shift)

    def encode_frame(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor):
        """The encoder's ``EncoderOutput`` of one frame given in the input length unit."""
        if self.length_scale != 1.0:
            positions = positions / self.length_scale
            cell = cell / self.length_scale
        m = positions.shape[0] // self.encoder.atoms_per_molecule
        batch = torch.zeros(m, dtype=torch.long, device=positions.device)
        return self.encoder.encode(positions, cell.unsqueeze(0), batch, edge_index, edge_shift, 1)

    def outputs(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        """The K outputs of one frame (what ``forward`` returns)."""
        out = self.encode_frame(positions, cell, edge_index, edge_shift)
        return self.derived(out.z, out.n_crystal, out.n_nucleus)[0]

    @torch.jit.export
    def molecule_outputs(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        """Per molecule [M, 2]: crystal-likeness p (``n_crystal = sum``) and its share of
        ``n_nucleus`` (``n_nucleus = sum``), for looking at a nucleus (``latentcv eval
        --molecule-dump``)."""
        out = self.encode_frame(positions, cell, edge_index, edge_shift)
        p = torch.sigmoid(out.p_logit)
        return torch.stack([p, self.encoder.nucleus.contributions(p, out.edge_index, out.edge_weight)], dim=1)

    @torch.jit.export
    def molecule_centers(self, positions: Tensor, cell: Tensor) -> Tensor:
        if self.length_scale == 1.0:
            return self.encoder.molecule_centers(positions, cell)
        s = self.length_scale
        return self.encoder.molecule_centers(positions / s, cell / s) * s
