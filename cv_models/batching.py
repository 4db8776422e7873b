"""Frames → the encoder's batched inputs, and encoding many frames.

A *sample* is one frame's tensors and molecule pair list (positions are fixed, so the list
is built once); :func:`collate` joins samples into one batch graph for
:meth:`~latentcv.cv_models.model.HierarchicalEncoder.encode`. Training, export checks,
analysis and the demo all batch through here.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor

from .config import ConfigError
from .data.frames import Frame
from .graphs import frame_graph
from .model import HierarchicalEncoder

__all__ = ["prepare_samples", "collate", "encode_frames"]


def prepare_samples(
    frames: Sequence[Frame], atoms_per_molecule: int, cutoff: float, dtype: torch.dtype
) -> List[Dict[str, Any]]:
    """Per-frame tensors and neighbour lists (positions are fixed, so built once).

    ``mol_labels`` [M]: the frame's ``molecule_labels`` if set, else its label broadcast."""
    out = []
    for f in frames:
        pos = torch.tensor(f.positions, dtype=torch.float64)
        cell = torch.tensor(f.cell, dtype=torch.float64)
        ei, sh = frame_graph(pos, cell, atoms_per_molecule, cutoff)
        m = f.n_atoms // atoms_per_molecule
        if f.molecule_labels is not None:
            if len(f.molecule_labels) != m:
                raise ConfigError(
                    f"frame {f.trajectory}:{f.index} has {len(f.molecule_labels)} molecule labels for {m} molecules"
                )
            mol_labels = torch.as_tensor(np.asarray(f.molecule_labels), dtype=torch.long)
        else:
            mol_labels = torch.full((m,), int(f.label), dtype=torch.long)
        out.append(
            {
                "positions": pos.to(dtype),
                "cell": cell.to(dtype),
                "edge_index": ei,
                "edge_shift": sh.to(dtype),
                "label": int(f.label),
                "n_mol": m,
                "mol_labels": mol_labels,
            }
        )
    return out


def collate(samples: Sequence[Dict[str, Any]], device: torch.device) -> Dict[str, Tensor]:
    """Concatenate frames into one batch graph (molecule indices offset per frame)."""
    offs = 0
    eis, mb, starts, counts = [], [], [], []
    for k, s in enumerate(samples):
        eis.append(s["edge_index"] + offs)
        mb.append(torch.full((s["n_mol"],), k, dtype=torch.long))
        starts.append(offs)
        counts.append(s["n_mol"])
        offs += s["n_mol"]
    return {
        "positions": torch.cat([s["positions"] for s in samples]).to(device),
        "cells": torch.stack([s["cell"] for s in samples]).to(device),
        "edge_index": torch.cat(eis, dim=1).to(device),
        "edge_shift": torch.cat([s["edge_shift"] for s in samples]).to(device),
        "mol_batch": torch.cat(mb).to(device),
        "mol_start": torch.tensor(starts, dtype=torch.long, device=device),
        "mol_count": torch.tensor(counts, dtype=torch.long, device=device),
        "labels": torch.tensor([s["label"] for s in samples], dtype=torch.long, device=device),
        "mol_labels": torch.cat([s["mol_labels"] for s in samples]).to(device),
    }


@torch.no_grad()
def encode_frames(
    encoder: HierarchicalEncoder, samples: Sequence[Dict[str, Any]], device: torch.device, batch_size: int = 16
) -> Dict[str, Any]:
    """z [F, d], n_crystal [F], n_nucleus [F], n_largest [F] (``encoder.largest``, for
    analysis: not an exported output), per-molecule crystal probabilities (list of [M]) of
    samples."""
    zs, nc, nn_, nl, pm = [], [], [], [], []
    for k in range(0, len(samples), batch_size):
        chunk = samples[k : k + batch_size]
        b = collate(chunk, device)
        out = encoder.encode(b["positions"], b["cells"], b["mol_batch"], b["edge_index"], b["edge_shift"], len(chunk))
        zs.append(out.z.cpu())
        nc.append(out.n_crystal.cpu())
        nn_.append(out.n_nucleus.cpu())
        share = encoder.nucleus.contributions(torch.sigmoid(out.p_logit), out.edge_index, out.edge_weight)
        nl.append(encoder.largest(share, out.centers, b["cells"], b["mol_batch"], len(chunk)).cpu())
        p = torch.sigmoid(out.p_logit).cpu()
        pm.extend(torch.split(p, [s["n_mol"] for s in chunk]))
    if not zs:
        return {
            "z": torch.zeros(0, encoder.latent_dim),
            "n_crystal": torch.zeros(0),
            "n_nucleus": torch.zeros(0),
            "n_largest": torch.zeros(0),
            "p_molecule": [],
        }
    counts = {"n_crystal": torch.cat(nc), "n_nucleus": torch.cat(nn_), "n_largest": torch.cat(nl)}
    return {"z": torch.cat(zs), **counts, "p_molecule": pm}
