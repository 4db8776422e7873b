"""Training checkpoints: what :func:`latentcv.cv_models.training.train` writes, and reading
them back (the trained encoder) for export and analysis.

A checkpoint is a ``torch.save`` dict: ``version``, ``model_config``, ``config`` (the run's
config as a dict), ``config_dir`` (the folder its relative paths are relative to),
``model_state``, ``train_state``, ``output_names``; the final ``checkpoint.pt`` adds
``centroids``, ``summary`` and ``split``; ``checkpoint_last.pt`` adds ``optimizer_state``.

It holds tensors and plain data only (dict, list, tuple, str, int, float, bool, None:
:func:`plain_data`), and is read with ``torch.load(..., weights_only=True)``: reading a
checkpoint never runs code from it, and one that would need to is refused
(docs/security.md).
"""

from __future__ import annotations

import dataclasses
import pickle
from collections import OrderedDict
import re
from pathlib import Path, PurePath
from typing import Any, Dict, Tuple

import numpy as np
import torch

from .config import ModelConfig
from .autoencoder import HierarchicalAutoencoder
from .model import HierarchicalEncoder
from .atomic_write import write_atomically

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "encoder_from_checkpoint",
    "load_checkpoint",
    "load_encoder",
    "load_trained_encoder",
    "plain_data",
    "write_checkpoint",
]

# 2: records config_dir (1 left export to guess it from the output folder). Version 2 also
# holds only tensors and plain data; version-2 files that do not are refused when read.
CHECKPOINT_VERSION = 2
_SCALARS = (str, int, float, bool, type(None))  # these exact types (a subclass may pickle as itself)
_TORCH = (torch.Tensor, torch.dtype, torch.device, torch.Size)


class CheckpointError(ValueError):
    """A file given as a checkpoint is not one latentcv reads (message: what to pass instead)."""


def plain_data(value: Any, where: str = "checkpoint") -> Any:
    """``value`` made of tensors and plain data only, as ``weights_only`` loading reads it:
    NumPy arrays and scalars become lists and numbers, paths strings, dataclasses dicts;
    tuples stay tuples. Raises TypeError naming the entry (``where``) for any other type."""
    if type(value) in _SCALARS or isinstance(value, _TORCH):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return _plain_dict(value, where)
    if isinstance(value, (list, tuple)):
        items = [plain_data(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_data(dataclasses.asdict(value), where)
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}: a checkpoint holds only "
        "tensors and plain data (dict, list, str, int, float, bool, None); convert it before saving"
    )


def _plain_dict(value: dict, where: str) -> dict:
    """A dict of plain data; a state dict (an OrderedDict) stays one, with its ``_metadata``."""
    items = [(plain_data(k, where), plain_data(v, f"{where}[{k!r}]")) for k, v in value.items()]
    if not isinstance(value, OrderedDict):
        return dict(items)
    out = OrderedDict(items)
    if hasattr(value, "_metadata"):
        out._metadata = plain_data(value._metadata, f"{where}._metadata")  # type: ignore[attr-defined]
    return out


def load_checkpoint(path: str | Path) -> Dict[str, Any]:
    """A checkpoint written by :func:`train` (dict with ``config``, ``model_state``, ...),
    read without running code from the file (``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: a folder, not a checkpoint, or a file holding Python objects
            (an older latentcv's checkpoint, or a crafted one): refused, never unpickled.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory, not a checkpoint: pass the checkpoint file in it, "
            f"e.g. {path / 'checkpoint.pt'} (written by `latentcv train`)"
        )
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; train first (`latentcv train CONFIG`) and "
            "pass its output_dir/checkpoint.pt"
        )
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise CheckpointError(f"{path} is not a latentcv training checkpoint ({_first_line(exc)})") from None
        raise CheckpointError(_refused(path, exc)) from None
    except Exception as exc:  # torch raises several types for files that are not checkpoints
        raise CheckpointError(
            f"{path} is not a latentcv training checkpoint ({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    if not isinstance(ck, dict) or "model_state" not in ck or "model_config" not in ck:
        raise CheckpointError(
            f"{path} is not a latentcv training checkpoint (no model_state/model_config); "
            "pass the checkpoint.pt written by `latentcv train`"
        )
    return ck


def _refused(path: Path, exc: Exception) -> str:
    """The message for a file that ``weights_only`` loading refuses."""
    found = re.search(r"GLOBAL ([\w.]{1,200})", str(exc))
    what = f" ({found.group(1)})" if found else ""
    return (
        f"{path} holds Python objects{what} that only unpickling could rebuild, and unpickling can run code "
        "from the file: refused, nothing from it was run (docs/security.md). If an older latentcv wrote it, "
        "re-train with `latentcv train CONFIG` (for a checkpoint_last.pt: delete it, or pass --no-resume); "
        "if you wrote it yourself, docs/security.md shows how to convert it"
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def encoder_from_checkpoint(ck: Dict[str, Any]) -> HierarchicalEncoder:
    """The trained :class:`HierarchicalEncoder` (eval mode, centroids set) of a loaded checkpoint."""
    model = HierarchicalAutoencoder(ModelConfig(**ck["model_config"]))
    model.load_state_dict(ck["model_state"])
    return model.encoder.eval()


def load_encoder(path: str | Path) -> HierarchicalEncoder:
    """Rebuild the trained :class:`HierarchicalEncoder` (eval mode, centroids set) from a
    checkpoint of :func:`train` (``checkpoint.pt``, ``checkpoint_best.pt`` or ``_last``)."""
    return encoder_from_checkpoint(load_checkpoint(path))


def load_trained_encoder(path: Path) -> Tuple[Dict[str, Any], HierarchicalEncoder]:
    """(checkpoint dict, encoder) of the final ``checkpoint.pt`` of a finished run, with errors
    that say what to pass instead: missing file, a folder, not a checkpoint, one holding
    Python objects, no latent centroids, or written by another version of the model code."""
    ck = load_checkpoint(path)
    if not ck.get("centroids"):
        raise CheckpointError(
            f"checkpoint {path} has no crystal/melt centroids: export the final checkpoint.pt of a "
            "finished run (not checkpoint_last/_best), trained on frames labelled crystal and melt"
        )
    try:
        encoder = encoder_from_checkpoint(ck)
    except (RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not fit this latentcv's encoder ({_first_line(exc)}); it was "
            "written by another version of the model code: retrain with `latentcv train CONFIG`"
        ) from exc
    return ck, encoder


def write_checkpoint(path: Path, checkpoint: Dict[str, Any]) -> None:
    """Write ``checkpoint`` (made :func:`plain_data`) to ``path`` atomically
    (:func:`write_atomically`): a killed run or a full disk leaves the previous checkpoint,
    never a partial one; a failed write raises :class:`WriteError` naming the file."""
    data = plain_data(checkpoint)
    write_atomically(path, lambda fh: torch.save(data, fh), "checkpoint")
