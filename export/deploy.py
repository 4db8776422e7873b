"""Write and read deployable CV models (contract version 2, docs/model-contract.md)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import torch
from torch import Tensor, nn

from latentcv.cv_models.native.ops import OPS_VERSION, ops_available
from latentcv.cv_models.atomic_write import write_atomically
from latentcv.cv_models.units import check_model_length_unit

# 2: the model may call latentcv's own operators (torch.ops.latentcv.*, recorded in the
# metadata key "ops_version"); 1: core torch ops only. Readers accept both.
CONTRACT_VERSION = 2
# 3: the model may be an AOTInductor package (.pt2, export/aoti.py); what packages record.
AOTI_CONTRACT_VERSION = 3
MODEL_FORMATS = {"torchscript": ".pt", "aoti": ".pt2"}  # --format -> the file's suffix
DTYPES = {"float64": torch.float64, "float32": torch.float32}
_STANDARD_KEYS = (
    "contract_version",
    "name",
    "length_unit",
    "dtype",
    "atoms_per_molecule",
    "species",
    "cutoff",
    "output_names",
    "description",
    "provenance",
    "ops_version",
)


@dataclass
class ModelCard:
    """What a deployable model says about itself (its ``metadata()``).

    Attributes:
        name: short model name, logged by the engines.
        length_unit: unit of positions and cell: "lj" (reduced), "nm" or "A".
        dtype: "float64" or "float32"; the model computes in it.
        atoms_per_molecule: atoms in one molecule (contiguous in the input).
        cutoff: neighbour cutoff on molecule centres, in ``length_unit``.
        output_names: names of the K outputs (PLUMED component names).
        species: species index of each atom of one molecule; empty = any.
        description: free text.
        provenance: JSON-able facts (config, data fingerprint, versions).
        extra: further metadata keys (string values), e.g. ``crystal_centroid`` or
            ``sigma_hint``; they may not redefine the keys above. Readers ignore keys
            they don't know (docs/model-contract.md).
        uses_ops: the model calls ``torch.ops.latentcv.*`` (set by :func:`save_deployable`);
            recorded as ``ops_version``.
    """

    name: str
    length_unit: str
    dtype: str
    atoms_per_molecule: int
    cutoff: float
    output_names: list[str]
    species: list[int] = field(default_factory=list)
    description: str = ""
    provenance: dict = field(default_factory=dict)
    extra: Dict[str, str] = field(default_factory=dict)
    uses_ops: bool = False

    def validate(self) -> None:
        check_model_length_unit(self.length_unit)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, not {self.dtype!r}")
        if self.atoms_per_molecule < 1:
            raise ValueError("atoms_per_molecule must be at least 1")
        if not self.cutoff > 0:
            raise ValueError("cutoff must be positive")
        if not self.output_names:
            raise ValueError("a model needs at least one output name")
        for name in self.output_names:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"output name {name!r}: use letters, digits and '_' (PLUMED component names)")
        if self.species and len(self.species) != self.atoms_per_molecule:
            raise ValueError("species must list one entry per atom of a molecule")
        for key, value in self.extra.items():
            if key in _STANDARD_KEYS:
                raise ValueError(f"extra metadata key {key!r} would redefine a standard key; rename it")
            if not isinstance(value, str):
                raise ValueError(f"extra metadata {key!r}: values must be strings, not {type(value).__name__}")

    def to_metadata(self, contract_version: int | None = None) -> Dict[str, str]:
        """The metadata, recording ``contract_version`` (default: :data:`CONTRACT_VERSION`)."""
        self.validate()
        import torch as _torch

        provenance = {"torch": _torch.__version__, **self.provenance}
        standard = {
            "contract_version": str(CONTRACT_VERSION if contract_version is None else contract_version),
            "name": self.name,
            "length_unit": self.length_unit,
            "dtype": self.dtype,
            "atoms_per_molecule": str(self.atoms_per_molecule),
            "species": format_numbers([int(s) for s in self.species]),
            "cutoff": repr(float(self.cutoff)),
            "output_names": ",".join(self.output_names),  # names: validated above, no commas
            "description": self.description,
            "provenance": json.dumps(provenance, sort_keys=True, default=str),
        }
        if self.uses_ops:
            standard["ops_version"] = str(OPS_VERSION)
        return {**self.extra, **standard}


class DeployableCV(nn.Module):
    """The contract's module: an encoder plus its metadata.

    The encoder must provide ``forward(positions[N,3], cell[3,3], edge_index[2,P],
    edge_shift[P,3]) -> Tensor[K]`` and ``molecule_centers(positions, cell) -> [M,3]``.
    """

    def __init__(self, encoder: nn.Module, metadata: Dict[str, str]):
        super().__init__()
        self.encoder = encoder
        self.card: Dict[str, str] = metadata

    def forward(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        return self.encoder(positions, cell, edge_index, edge_shift)

    @torch.jit.export
    def molecule_centers(self, positions: Tensor, cell: Tensor) -> Tensor:
        return self.encoder.molecule_centers(positions, cell)

    @torch.jit.export
    def metadata(self) -> Dict[str, str]:
        return self.card


def save_deployable(
    encoder: nn.Module, card: ModelCard, path: str | os.PathLike, model_format: str = "torchscript"
) -> Path:
    """Script ``encoder`` with ``card`` and write it atomically to ``path``; with
    ``model_format="aoti"`` compile it into an AOTInductor package instead (export/aoti.py).

    The encoder is put in eval mode, cast to ``card.dtype`` and frozen (no parameter
    requires grad). Refuses a module still in training mode.
    """
    if encoder.training:
        raise ValueError("the encoder is in training mode; call .eval() before exporting it")
    if model_format not in MODEL_FORMATS:
        raise ValueError(f"model format must be one of {tuple(MODEL_FORMATS)}, not {model_format!r}")
    if model_format == "aoti":
        from .aoti import save_aoti

        metadata = dataclasses.replace(card, uses_ops=False).to_metadata(AOTI_CONTRACT_VERSION)
        return save_aoti(encoder, metadata, DTYPES[card.dtype], card.atoms_per_molecule, path)
    from latentcv.cv_models.layers import FusedKernels

    card = dataclasses.replace(card, uses_ops=any(isinstance(m, FusedKernels) for m in encoder.modules()))
    metadata = card.to_metadata()
    module = DeployableCV(encoder, metadata).to(DTYPES[card.dtype]).cpu().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    scripted = torch.jit.script(module)
    return write_atomically(path, lambda fh: torch.jit.save(scripted, fh), "model")


def load_deployable(path: str | os.PathLike):
    """Load a model file in Python (the reference evaluation path): a ScriptModule, or for
    an AOTInductor package (``.pt2``) an :class:`latentcv.export.aoti.AotiModel` with the same
    ``__call__``, ``molecule_centers`` and ``metadata``."""
    from .aoti import is_aoti_file, load_aoti

    if is_aoti_file(path):
        return load_aoti(path)
    ops_available()  # registers torch.ops.latentcv.*, which models of contract version 2 may call
    return torch.jit.load(str(path), map_location="cpu")


# ---------------------------------------------------------------------------- metadata values
# Metadata values are strings (TorchScript Dict[str, str]); lists are comma-separated. These
# four functions are the only place that writes or reads that format.
def format_numbers(values) -> str:
    """``[1.0, 2.5]`` → ``"1.0,2.5"`` (floats with repr precision; ints as ints)."""
    return ",".join(str(int(v)) if isinstance(v, int) else repr(float(v)) for v in values)


def parse_floats(text: str) -> List[float]:
    """``"1.0,2.5"`` → ``[1.0, 2.5]``; ``""`` → ``[]``."""
    return [float(x) for x in text.split(",") if x.strip()]


def parse_ints(text: str) -> List[int]:
    """``"0,1,1"`` → ``[0, 1, 1]``; ``""`` → ``[]``."""
    return [int(x) for x in text.split(",") if x.strip()]


def parse_names(text: str) -> List[str]:
    """``"z0,proj"`` → ``["z0", "proj"]``; ``""`` → ``[]``."""
    return [x.strip() for x in text.split(",") if x.strip()]


def model_file(model: str | os.PathLike) -> Path:
    """``model`` as the path of an existing file, or an error that says what to pass: no
    such file (FileNotFoundError), or a folder (ValueError, naming the model files in it)."""
    p = Path(model)
    if p.is_dir():
        inside = [f.name for f in sorted([*p.glob("*.pt"), *p.glob("*.pt2")]) if not f.name.startswith("checkpoint")]
        hint = f" (in it: {', '.join(inside[:5])})" if inside else ""
        raise ValueError(
            f"{p} is a directory, not a model file: pass the model file written by "
            f"`latentcv export CHECKPOINT -o model.pt`{hint}"
        )
    if not p.exists():
        raise FileNotFoundError(f"model file {p} not found; write it with `latentcv export CHECKPOINT -o {p}`")
    return p


def read_metadata(model: str | os.PathLike) -> Dict[str, str]:
    """The metadata of a model file, read through the C++ core (as PLUMED will)."""
    from latentcv.cv_models.native import core as native

    return dict(native.read_model_info(str(model_file(model))).metadata)
