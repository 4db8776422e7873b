"""A list of frames grouped by trajectory, with cheap saving to one ``.npz`` file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic_write import write_atomically
from .frames import Frame


@dataclass
class Dataset:
    """Frames from one or more trajectories, in trajectory order.

    ``Frame.trajectory`` names the trajectory each frame belongs to and ``Frame.index``
    its position in it; the train/validation split (:mod:`latentcv.cv_models.data.split`) cuts
    trajectories into contiguous blocks using both.
    """

    frames: list[Frame] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __getitem__(self, i: int) -> Frame:
        return self.frames[i]

    def __add__(self, other: "Dataset") -> "Dataset":
        return Dataset(self.frames + list(other.frames))

    def extend(self, frames: Iterable[Frame]) -> None:
        self.frames.extend(frames)

    @property
    def trajectories(self) -> list[str]:
        """Trajectory names in order of first appearance."""
        return list(dict.fromkeys(f.trajectory for f in self.frames))

    def by_trajectory(self) -> dict[str, list[Frame]]:
        """Frames of each trajectory, sorted by ``Frame.index``."""
        out: dict[str, list[Frame]] = {}
        for f in self.frames:
            out.setdefault(f.trajectory, []).append(f)
        return {k: sorted(v, key=lambda f: f.index) for k, v in out.items()}

    def labels(self) -> np.ndarray:
        """[F] int64 phase label of each frame."""
        return np.array([f.label for f in self.frames], dtype=np.int64)

    def select(self, label: int) -> "Dataset":
        """Frames with the given phase label."""
        return Dataset([f for f in self.frames if f.label == label])

    def save(self, path: str | Path) -> None:
        """Write all frames to one compressed ``.npz`` (arrays concatenated, with offsets)."""
        fr = self.frames
        counts = np.array([f.n_atoms for f in fr], dtype=np.int64)
        meta = [
            {
                "label": int(f.label),
                "length_unit": f.length_unit,
                "trajectory": f.trajectory,
                "index": int(f.index),
                "timestep": int(f.timestep),
                "bonds": None if f.bonds is None else np.asarray(f.bonds).tolist(),
                "molecule_labels": f.molecule_labels is not None,
            }
            for f in fr
        ]
        empty3 = np.zeros((0, 3))
        path = Path(path)
        if path.suffix != ".npz":  # as numpy names it
            path = path.with_name(path.name + ".npz")
        # atomic: a killed run or a full disk leaves the previous file (or none), never half a file
        write_atomically(path, lambda fh: self._write_npz(fh, fr, counts, meta, empty3), "dataset")

    @staticmethod
    def _write_npz(fh, fr, counts, meta, empty3) -> None:
        np.savez_compressed(
            fh,
            counts=counts,
            positions=np.concatenate([f.positions for f in fr]) if fr else empty3,
            cells=np.stack([f.cell for f in fr]) if fr else np.zeros((0, 3, 3)),
            molecule=np.concatenate([f.molecule for f in fr]) if fr else np.zeros(0, np.int64),
            species=np.concatenate([f.species for f in fr]) if fr else np.zeros(0, np.int64),
            molecule_labels=np.concatenate(
                [np.asarray(f.molecule_labels, dtype=np.int64) for f in fr if f.molecule_labels is not None]
                or [np.zeros(0, np.int64)]
            ),
            meta=np.array(json.dumps(meta)),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Dataset":
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            counts = z["counts"]
            offsets = np.concatenate([[0], np.cumsum(counts)])
            pos, cells, mol, spe = z["positions"], z["cells"], z["molecule"], z["species"]
            meta = json.loads(str(z["meta"]))
            mol_labels = z["molecule_labels"] if "molecule_labels" in z.files else np.zeros(0, np.int64)
        frames = []
        used = 0
        for k, m in enumerate(meta):
            a, b = offsets[k], offsets[k + 1]
            labels = None
            if m.get("molecule_labels"):
                n_mol = int(mol[a:b].max()) + 1 if b > a else 0
                labels = mol_labels[used : used + n_mol].copy()
                used += n_mol
            frames.append(
                Frame(
                    positions=pos[a:b].copy(),
                    cell=cells[k].copy(),
                    molecule=mol[a:b].copy(),
                    species=spe[a:b].copy(),
                    label=m["label"],
                    length_unit=m["length_unit"],
                    trajectory=m["trajectory"],
                    index=m["index"],
                    bonds=None if m["bonds"] is None else np.array(m["bonds"], dtype=np.int64).reshape(-1, 2),
                    timestep=m["timestep"],
                    molecule_labels=labels,
                )
            )
        return cls(frames)
