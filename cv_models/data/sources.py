"""The frames a run's config names (``[data]``): trajectories, a saved dataset, or a
synthetic set."""

from __future__ import annotations

from typing import List

from ..config import Config
from .frames import Frame

__all__ = ["load_frames"]


def load_frames(cfg: Config) -> List[Frame]:
    """Frames named by ``cfg.data``: trajectories (via ``latentcv.cv_models.data.readers``), a saved
    dataset, or a synthetic set."""
    d = cfg.data
    if d.synthetic:
        from ..synthetic import synthetic_dataset

        return synthetic_dataset(**d.synthetic)
    if d.dataset:
        from .dataset import Dataset

        return list(Dataset.load(cfg.resolve(d.dataset)))
    from .readers import read_dataset

    specs = []
    for t in d.trajectories:
        t = dict(t)
        for key in ("path", "data_file", "top"):
            if key in t and isinstance(t[key], str):
                t[key] = str(cfg.resolve(t[key]))
        specs.append(t)
    return list(read_dataset(specs))
