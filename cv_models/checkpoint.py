"""Training checkpoints: what :func:`latentcv.cv_models.training.train` writes, and reading
them back (the trained encoder) for export and analysis.

A checkpoint is a ``torch.save`` dict: ``version``, ``model_config``, ``config`` (the run's
config as a dict), ``config_dir`` (the folder its relative paths are relative to),
``model_state``, ``train_state``, ``output_names``; the final ``checkpoint.pt`` adds
``centroids``, ``summary`` and ``split``; ``checkpoint_last.pt`` adds ``optimizer_state``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import torch

from .config import ModelConfig
from .autoencoder import HierarchicalAutoencoder
from .model import HierarchicalEncoder

__all__ = ["CHECKPOINT_VERSION", "load_checkpoint", "load_encoder", "load_trained_encoder", "write_checkpoint"]

# 2: records config_dir (1 left export to guess it from the output folder)
CHECKPOINT_VERSION = 2


def load_checkpoint(path: str | Path) -> Dict[str, Any]:
    """A checkpoint written by :func:`train` (dict with ``config``, ``model_state``, ...)."""
    return torch.load(str(path), map_location="cpu", weights_only=False)


def load_encoder(path: str | Path) -> HierarchicalEncoder:
    """Rebuild the trained :class:`HierarchicalEncoder` (eval mode, centroids set) from a
    checkpoint of :func:`train` (``checkpoint.pt``, ``checkpoint_best.pt`` or ``_last``)."""
    ck = load_checkpoint(path)
    mcfg = ModelConfig(**ck["model_config"])
    model = HierarchicalAutoencoder(mcfg)
    model.load_state_dict(ck["model_state"])
    return model.encoder.eval()


def load_trained_encoder(path: Path) -> Tuple[Dict[str, Any], HierarchicalEncoder]:
    """(checkpoint dict, encoder) of the final ``checkpoint.pt`` of a finished run, with errors
    that say what to pass instead: missing file, not a checkpoint, no latent centroids, or
    written by another version of the model code."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; train first (`latentcv train CONFIG`) and "
                                "pass its output_dir/checkpoint.pt")
    try:
        ck = load_checkpoint(path)
    except Exception as exc:  # torch raises several types for non-checkpoint files
        raise ValueError(f"{path} is not a latentcv training checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ck, dict) or "model_state" not in ck or "model_config" not in ck:
        raise ValueError(f"{path} is not a latentcv training checkpoint (no model_state/model_config); "
                         "pass the checkpoint.pt written by `latentcv train`")
    if not ck.get("centroids"):
        raise ValueError(f"checkpoint {path} has no crystal/melt centroids: export the final checkpoint.pt of a "
                         "finished run (not checkpoint_last/_best), trained on frames labelled crystal and melt")
    try:
        encoder = load_encoder(path)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"checkpoint {path} does not fit this latentcv's encoder ({first}); it was written by "
                         "another version of the model code: retrain with `latentcv train CONFIG`") from exc
    return ck, encoder


def write_checkpoint(path: Path, checkpoint: Dict[str, Any]) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a temporary file renamed over it): a
    killed run leaves the previous checkpoint, never a partial one."""
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, str(tmp))
    tmp.replace(path)
