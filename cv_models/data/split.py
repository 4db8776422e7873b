"""Train/validation split by contiguous trajectory blocks.

Why blocks and not random frames: consecutive MD frames are strongly correlated (a frame
dumped every few hundred steps is still close to its neighbours). With a random
frame-level split almost every validation frame has a near-copy in the training set, so
validation accuracy measures memorisation and looks better than it is (the seed
design's notebooks did exactly this). Cutting each trajectory into K contiguous blocks
and holding out *whole* blocks keeps validation frames away from training frames
except at the block edges; ``gap`` frames can be dropped there too. Every trajectory
contributes to both sides, so every phase label is present in validation.

The choice of blocks is deterministic: it depends only on ``seed``, the trajectory
name and its frame count, not on the order of trajectories in the dataset.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import List, Tuple
from dataclasses import dataclass

import numpy as np

from .dataset import Dataset
from .frames import Frame


@dataclass
class SplitConfig:
    """How to split.

    Attributes:
        n_blocks: K contiguous blocks per trajectory (fewer if it has fewer frames).
        val_fraction: fraction of each trajectory's blocks held out (at least one block
            when the trajectory has ≥ 2 blocks; a one-block trajectory goes to training).
        gap: frames dropped on the training side next to each validation block.
        seed: chooses which blocks are held out.
    """

    n_blocks: int = 5
    val_fraction: float = 0.2
    gap: int = 0
    seed: int = 0


def block_ids(n_frames: int, n_blocks: int) -> np.ndarray:
    """[n_frames] block index 0..K-1 of each frame: K nearly equal contiguous blocks."""
    k = max(1, min(n_blocks, n_frames))
    return (np.arange(n_frames) * k) // max(n_frames, 1)


def _validation_blocks(name: str, k: int, config: SplitConfig) -> np.ndarray:
    if k < 2:
        return np.zeros(0, dtype=np.int64)
    n_val = min(k - 1, max(1, int(round(config.val_fraction * k))))
    rng = np.random.default_rng([config.seed, zlib.crc32(name.encode()), k])
    return np.sort(rng.choice(k, size=n_val, replace=False))


def split_by_blocks(
    frames: Dataset | Iterable[Frame], config: SplitConfig | None = None, **overrides
) -> tuple[Dataset, Dataset]:
    """Split frames into (train, validation) by whole contiguous trajectory blocks.

    Frames are grouped by ``Frame.trajectory`` and ordered by ``Frame.index``; each
    trajectory is cut into ``n_blocks`` contiguous blocks (:func:`block_ids`) and the
    blocks chosen by :func:`_validation_blocks` go to validation. No block is ever
    shared between the two sides.

    Args:
        frames: a Dataset or any iterable of Frames.
        config: :class:`SplitConfig`; keyword overrides (``n_blocks=10``) also accepted.
    Returns:
        (train, validation) Datasets.
    """
    cfg = config or SplitConfig()
    if overrides:
        cfg = SplitConfig(**{**cfg.__dict__, **overrides})
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ValueError("val_fraction must be in [0, 1)")
    ds = frames if isinstance(frames, Dataset) else Dataset(list(frames))
    train, val = Dataset(), Dataset()
    for name, traj in ds.by_trajectory().items():
        n = len(traj)
        blocks = block_ids(n, cfg.n_blocks)
        k = int(blocks.max()) + 1 if n else 0
        vb = _validation_blocks(name, k, cfg) if cfg.val_fraction > 0 else np.zeros(0, np.int64)
        is_val = np.isin(blocks, vb)
        drop = np.zeros(n, dtype=bool)
        if cfg.gap > 0 and is_val.any():
            for edge in np.nonzero(np.diff(is_val.astype(int)))[0]:
                # edge between frame `edge` and `edge + 1`; drop training frames beside it
                if is_val[edge + 1]:
                    drop[max(0, edge + 1 - cfg.gap) : edge + 1] = True
                else:
                    drop[edge + 1 : edge + 1 + cfg.gap] = True
            drop &= ~is_val
        for f, v, d in zip(traj, is_val, drop):
            if d:
                continue
            (val if v else train).frames.append(f)
    return train, val


def split_frames(
    frames: Sequence[Frame], n_blocks: int, val_fraction: float, seed: int, gap: int = 0
) -> Tuple[List[Frame], List[Frame]]:
    """Train/validation split by whole contiguous trajectory blocks (never random frames)."""
    tr, va = split_by_blocks(list(frames), n_blocks=n_blocks, val_fraction=val_fraction, seed=seed, gap=gap)
    return list(tr), list(va)
