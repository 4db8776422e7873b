"""What an exported model records about where it came from: the data fingerprint, the
molecule extent the C++ side checks ATOMS lists with, and the SIGMA hints of its outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path
import platform
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from latentcv.cv_models.data.pbc import minimum_image

from .deploy import ModelCard, format_numbers
from .module import DERIVED_OUTPUTS, LatentCVModule

__all__ = [
    "data_fingerprint",
    "file_sha256",
    "molecule_extent",
    "sigma_hints",
    "SigmaHints",
    "model_card",
    "MAX_SIGMA_FRAMES",
]

MAX_SIGMA_FRAMES = 256


def data_fingerprint(frames: Sequence) -> str:
    """``sha256:<hex>`` of the frames' arrays (positions, cell, molecule, species) and
    labels/units, in order: identifies the training data independently of its files."""
    h = hashlib.sha256()
    for f in frames:
        for a in (f.positions, f.cell):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        for a in (f.molecule, f.species):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        h.update(f"{int(f.label)}|{f.length_unit}|{f.trajectory}|{int(f.index)};".encode())
    return "sha256:" + h.hexdigest()


def molecule_extent(frames: Sequence, atoms_per_molecule: int, margin: float = 1.5) -> float:
    """``margin`` x the largest minimum-image distance of an atom from its molecule's first
    atom over ``frames`` (0 for one-atom molecules): the metadata key ``molecule_extent``
    the C++ side uses to refuse ATOMS lists not given molecule by molecule."""
    a = int(atoms_per_molecule)
    if a < 2:
        return 0.0
    worst = 0.0
    for f in frames:
        x = np.asarray(f.positions, dtype=np.float64).reshape(-1, a, 3)
        d = minimum_image(x - x[:, :1, :], f.cell)
        worst = max(worst, float(np.linalg.norm(d, axis=-1).max()))
    return margin * worst


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


@dataclass
class SigmaHints:
    """METAD SIGMA hints [K] of a module's outputs, the frames they come from and which
    frames those are ("melt", or all when fewer than 2 are labelled melt)."""

    values: List[float]
    frames: list
    which: str


def sigma_hints(module: LatentCVModule, frames: Sequence, max_frames: int = MAX_SIGMA_FRAMES) -> SigmaHints:
    """Half the standard deviation of every output over the melt frames (all frames if
    none is labelled melt): a METAD SIGMA hint.
    The hint of an extensive output (``n_crystal``) holds for the frames' size: it grows
    like the square root of the number of molecules."""
    from latentcv.cv_models.data.frames import MELT
    from latentcv.cv_models.batching import encode_frames, prepare_samples

    melt = [f for f in frames if int(f.label) == MELT]
    which = "melt"
    if len(melt) < 2:
        melt, which = list(frames), "all (fewer than 2 melt frames)"
    if len(melt) > max_frames:
        melt = [melt[i] for i in np.linspace(0, len(melt) - 1, max_frames).round().astype(int)]
    enc = module.encoder
    dtype = module.crystal_centroid.dtype
    samples = prepare_samples(melt, enc.atoms_per_molecule, enc.cutoff, dtype)
    out = encode_frames(enc, samples, torch.device("cpu"))
    with torch.no_grad():
        values = (
            module.derived(out["z"].to(dtype), out["n_crystal"].to(dtype), out["n_nucleus"].to(dtype)).double().numpy()
        )
    std = values.std(axis=0) if len(values) > 1 else np.zeros(values.shape[1])
    scale = np.maximum(np.abs(values).max(axis=0), 1.0)
    hints = np.where(std > 0, 0.5 * std, 1e-3 * scale)
    return SigmaHints([float(h) for h in hints], melt, which)


def model_card(
    module: LatentCVModule,
    ck: dict,
    checkpoint: Path,
    frames: Sequence,
    check_source: str,
    hints: SigmaHints,
    length_unit: str,
    dtype: str,
    name: str,
    species_masses: Optional[Sequence[float]] = None,
) -> ModelCard:
    """The metadata of a model exported from training checkpoint ``ck``: the contract's keys,
    the centroids, SIGMA hints, molecule extent, species masses, and the provenance
    (checkpoint, config, data fingerprint of ``frames``, versions)."""
    import latentcv.cv_models
    from latentcv.cv_models.checkpoint import CHECKPOINT_VERSION

    encoder = module.encoder
    a = int(encoder.atoms_per_molecule)
    fingerprint = data_fingerprint(frames)
    provenance = {
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_sha256": file_sha256(checkpoint),
        "checkpoint_version": ck.get("version", CHECKPOINT_VERSION),
        "config": ck.get("config"),
        "model_config": ck.get("model_config"),
        "data_fingerprint": fingerprint,
        "n_frames": len(frames),
        "split": ck.get("split"),
        "summary": ck.get("summary"),
        "self_check_frames": check_source,
        "versions": {
            "latentcv": latentcv.cv_models.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    meanings = "; ".join(f"{o.name} = {o.meaning}" for o in DERIVED_OUTPUTS)
    hint_molecules = float(np.mean([f.n_molecules for f in hints.frames])) if hints.frames else 0.0
    return ModelCard(
        name=name,
        length_unit=length_unit,
        dtype=dtype,
        atoms_per_molecule=a,
        cutoff=float(module.cutoff),
        output_names=module.output_names(),
        species=[int(s) for s in encoder.species.tolist()],
        description=f"latentcv hierarchical graph autoencoder: z0..z{{d-1}} latent coordinates; {meanings}",
        provenance=provenance,
        extra={
            "latent_dim": str(encoder.latent_dim),
            "crystal_centroid": format_numbers(module.crystal_centroid.tolist()),
            "melt_centroid": format_numbers(module.melt_centroid.tolist()),
            "sigma_hint": format_numbers(hints.values),
            "sigma_hint_source": f"0.5 x std over {len(hints.frames)} {hints.which} frames of the training data",
            "sigma_hint_molecules": repr(hint_molecules),
            "extensive_outputs": ",".join(o.name for o in DERIVED_OUTPUTS if o.extensive),
            "r_on": repr(float(encoder.r_on)),
            "molecule_extent": repr(module.length_scale * molecule_extent(frames, a)) if a > 1 else "",
            "length_scale": repr(module.length_scale),
            "nucleus_fraction": repr(float(encoder.nucleus.fraction)),
            "nucleus_width": repr(float(encoder.nucleus.width)),
            "crystal_softness": repr(float(getattr(encoder, "crystal_softness", 1.0))),
            **({"species_masses": format_numbers([float(m) for m in species_masses])} if species_masses else {}),
            "data_fingerprint": fingerprint,
        },
    )
