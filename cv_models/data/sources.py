"""The frames a run's config names (``[data]``): trajectories, a saved dataset, or a
synthetic set."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import List

from ..config import Config
from .frames import Frame, check_frames

__all__ = ["load_frames"]


def load_frames(cfg: Config) -> List[Frame]:
    """Frames named by ``cfg.data``: trajectories (via ``latentcv.cv_models.data.readers``), a saved
    dataset, or a synthetic set."""
    d = cfg.data
    if d.synthetic:
        from ..synthetic import synthetic_dataset

        return synthetic_dataset(**d.synthetic)
    if d.dataset:
        return _load_dataset(cfg.resolve(d.dataset))
    from .readers import read_dataset

    specs = []
    for t in d.trajectories:
        t = dict(t)
        for key in ("path", "data_file", "top"):
            if key in t and isinstance(t[key], str):
                t[key] = str(cfg.resolve(t[key]))
        specs.append(t)
    return list(read_dataset(specs))


def _load_dataset(path: Path) -> List[Frame]:
    """``[data] dataset``: the frames of a saved Dataset, each checked (:func:`check_frames`)."""
    from .dataset import Dataset

    if not path.is_file():
        raise FileNotFoundError(
            f"data.dataset: {path} does not exist or is not a file (relative paths are relative to the config file)"
        )
    try:
        frames = list(Dataset.load(path))
    except (KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(
            f"data.dataset: {path} is not a dataset written by latentcv ({type(exc).__name__}: {exc})"
        ) from exc
    if not frames:
        raise ValueError(f"data.dataset: {path} holds no frames")
    check_frames(frames, str(path))
    return frames
