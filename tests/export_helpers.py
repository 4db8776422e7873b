"""Tiny trained models for the tests of ``latentcv export`` / ``plumed-input`` / ``eval``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentcv.cv_models.config import load_config
from latentcv.cv_models.graphs import frame_graph
from latentcv.cv_models.data.sources import load_frames
from latentcv.cv_models.data.split import split_frames
from latentcv.cv_models.training import train

# A tiny model on synthetic crystal/melt frames: the config every training/export test uses.
TINY_CONFIG = """
[data]
synthetic = {{ atoms_per_molecule = {apm}, n_cells = 2, frames_per_trajectory = 5, trajectories_per_phase = 2 }}
n_blocks = 5
val_fraction = 0.2

[model]
hidden = 8
stage2_hidden = 8
rbf = 6
moment_channels = 2
max_rank = 4
molecule_latent = 4
stage1_layers = 1
stage2_layers = 1

[training]
epochs = {epochs}
batch_size = 4
lr = 5e-3
output_dir = "{out}"
progress = false
patience = 0
"""


def tiny_config(apm: int = 2, epochs: int = 3, out: str = "run") -> str:
    """The text of TINY_CONFIG for molecules of ``apm`` atoms."""
    return TINY_CONFIG.format(apm=apm, epochs=epochs, out=out)


def train_tiny(folder: Path, atoms_per_molecule: int) -> Path:
    """Train a tiny model on synthetic crystal/melt frames (LJ: 32 atoms, dimers: 64 atoms
    per frame) for 3 epochs; returns ``folder/run/checkpoint.pt``."""
    torch.set_num_threads(1)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "config.toml"
    cfg.write_text(tiny_config(atoms_per_molecule))
    return train(load_config(cfg))


def held_out_frames(checkpoint: Path):
    """The validation frames of the tiny model's training data (real frames it did not fit)."""
    cfg = load_config(Path(checkpoint).parent.parent / "config.toml")
    frames = load_frames(cfg)
    _, val = split_frames(frames, cfg.data.n_blocks, cfg.data.val_fraction, cfg.training.seed, cfg.data.gap)
    return val


def reference_outputs(encoder, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Independent Python reference of the exported outputs [z.., proj, dcrys, n_crystal,
    n_nucleus]: the eager encoder (float64) plus the derived CVs written out with numpy."""
    enc = encoder.double()
    with torch.no_grad():
        out = enc.evaluate(torch.tensor(positions, dtype=torch.float64), torch.tensor(cell, dtype=torch.float64))
    out = out.numpy()
    d = enc.latent_dim
    z, n = out[:d], out[d]
    c = enc.crystal_centroid.double().numpy()
    m = enc.melt_centroid.double().numpy()
    proj = float((z - m) @ (c - m) / ((c - m) @ (c - m)))
    dcrys = float(np.sqrt(np.sum((z - c) ** 2) / np.sum((c - m) ** 2) + 1e-4))
    return np.concatenate([z, [proj, dcrys, n, reference_n_nucleus(enc, positions, cell)]])


def reference_n_nucleus(enc, positions: np.ndarray, cell: np.ndarray) -> float:
    """``n_nucleus`` in numpy from the encoder's per-molecule probabilities: brute-force pairs
    of molecule centres, the quintic switch, the neighbour fraction and its smooth step."""
    from chain_helpers import brute_force_pairs

    x = torch.tensor(positions, dtype=torch.float64)
    box = torch.tensor(cell, dtype=torch.float64)
    with torch.no_grad():
        centers = enc.molecule_centers(x, box).numpy()
        ei, sh = frame_graph(x, box, enc.atoms_per_molecule, enc.cutoff)
        p = enc.molecule_crystallinity(x, box, ei, sh).numpy()
    (i, j), shifts = brute_force_pairs(centers, cell, enc.cutoff)
    r = np.linalg.norm(centers[j] + shifts @ cell - centers[i], axis=1)
    t = np.clip((r - enc.r_on) / (enc.cutoff - enc.r_on), 0.0, 1.0)
    w = 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t * t)
    coordination = np.bincount(i, weights=w, minlength=len(p))
    fraction = np.bincount(i, weights=w * p[j], minlength=len(p)) / (coordination + enc.nucleus.neighbour_floor)
    inside = 1.0 / (1.0 + np.exp(-(fraction - enc.nucleus.fraction) / enc.nucleus.width))
    return float(np.sum(p * inside))


NAMES = ["z0", "z1", "proj", "dcrys", "n_crystal", "n_nucleus"]


class _LatentCVOutputs(torch.nn.Module):
    """Six outputs named like an exported latentcv model's, from the analytic coordination CV."""

    def __init__(self, atoms_per_molecule: int):
        super().__init__()
        from latentcv.export.analytic import CoordinationCV

        self.cv = CoordinationCV(atoms_per_molecule, 1.5)

    @torch.jit.export
    def molecule_centers(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.cv.molecule_centers(positions, cell)

    def forward(
        self, positions: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor, edge_shift: torch.Tensor
    ) -> torch.Tensor:
        v = self.cv(positions, cell, edge_index, edge_shift)
        return torch.cat([v, v, v])


def save_model_with_hints(
    path: Path, sigma_hint, crystal=(1.0, 0.5), melt=(0.0, 0.0), atoms_per_molecule: int = 1, extra: dict | None = None
) -> Path:
    """A model file carrying the metadata ``latentcv export`` writes for ``plumed-input``
    (outputs z0 z1 proj dcrys n_crystal n_nucleus, centroids, ``sigma_hint``), without training."""
    from latentcv.export.deploy import ModelCard, save_deployable

    fmt = lambda xs: ",".join(repr(float(x)) for x in xs)  # noqa: E731
    card = ModelCard(
        name="hints",
        length_unit="lj",
        dtype="float64",
        atoms_per_molecule=atoms_per_molecule,
        cutoff=1.5,
        output_names=NAMES,
        species=[0] * atoms_per_molecule,
        extra={
            "crystal_centroid": fmt(crystal),
            "melt_centroid": fmt(melt),
            "sigma_hint": fmt(sigma_hint),
            "sigma_hint_source": "set by the test",
            **(extra or {}),
        },
    )
    return save_deployable(_LatentCVOutputs(atoms_per_molecule).eval(), card, path)


class TinyModels:
    """The tiny trained models of the tests (:func:`train_tiny`), each trained and exported
    once, under ``root``; ``logs[path]`` is the log of the export that wrote ``path``."""

    def __init__(self, root: Path):
        self.root = root
        self.logs: dict[Path, list[str]] = {}
        self._checkpoints: dict[int, Path] = {}
        self._exported: dict[tuple, Path] = {}

    def checkpoint(self, atoms_per_molecule: int) -> Path:
        """The checkpoint of the tiny model of molecules of ``atoms_per_molecule`` atoms."""
        if atoms_per_molecule not in self._checkpoints:
            self._checkpoints[atoms_per_molecule] = train_tiny(
                self.root / f"apm{atoms_per_molecule}", atoms_per_molecule
            )
        return self._checkpoints[atoms_per_molecule]

    def exported(self, atoms_per_molecule: int, dtype: str = "float64", **options) -> Path:
        """That checkpoint exported (``export_checkpoint(..., dtype=dtype, **options)``)."""
        from latentcv.export.from_checkpoint import export_checkpoint

        key = (atoms_per_molecule, dtype, tuple(sorted((k, repr(v)) for k, v in options.items())))
        if key not in self._exported:
            path = self.root / f"model{len(self._exported)}_apm{atoms_per_molecule}_{dtype}.pt"
            log: list[str] = []
            self._exported[key] = export_checkpoint(
                self.checkpoint(atoms_per_molecule), path, dtype=dtype, log=log.append, **options
            )
            self.logs[self._exported[key]] = log
        return self._exported[key]
