"""What training reports about a model: the line per epoch (``--no-progress``) and the
epoch-cap note, validation metrics, latent centroids, the latent
map ``latent.png``, ``metrics.csv`` / ``metrics.json``, and the held-out accuracy of a
finished run (:func:`heldout_report`, used by ``benchmarks/accuracy.py``).

The training loop (:mod:`latentcv.cv_models.training`) calls these once per epoch and at
the end; nothing here changes a model.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .autoencoder import HierarchicalAutoencoder
from .batching import collate, encode_frames, prepare_samples
from .checkpoint import load_encoder
from .config import Config, load_config
from . import loss_terms
from .data.frames import CRYSTAL, MELT
from .data.sources import load_frames
from .data.split import split_frames
from .model import HierarchicalEncoder
from .atomic_write import write_atomically

__all__ = [
    "loss_weights",
    "epoch_line",
    "epoch_cap_note",
    "validation_metrics",
    "latent_centroids",
    "plot_latent",
    "write_metrics",
    "heldout_report",
]


def loss_weights(cfg: Config) -> Dict[str, float]:
    """Weight of each loss term from ``[training]`` (the KL term only for a variational model)."""
    return loss_terms.loss_weights(cfg.training, cfg.model.variational)


EPOCH_LINE_KEYS = ("train_total", "val_total", "val_frame_acc", "val_molecule_acc")


def epoch_line(row: Dict[str, float], epochs: int) -> str:
    """One epoch in one line (``latentcv train --no-progress``)."""
    values = ", ".join(f"{k} {row[k]:.4g}" for k in EPOCH_LINE_KEYS if k in row)
    return f"latentcv train: epoch {int(row['epoch']) + 1}/{epochs}: {values} ({row.get('time_s', 0.0):.1f} s)"


def epoch_cap_note(state: Dict[str, Any], epochs: int, tolerance: float = 1e-3) -> Optional[str]:
    """The note for a run that ended at the epoch cap while its validation accuracy (per
    molecule, else per frame) was still rising: the mean of the last k <= 3 epochs above
    that of the k before by more than ``tolerance``; None otherwise (stopped early, no
    validation accuracy, too few epochs, or level)."""
    history = state["history"]
    if state["stopped"] or state["epoch"] < epochs or not history:
        return None
    key = next((k for k in ("val_molecule_acc", "val_frame_acc") if k in history[-1]), None)
    acc = [r[key] for r in history if key is not None and key in r]
    k = min(3, len(acc) // 2)
    if k < 1 or np.mean(acc[-k:]) - np.mean(acc[-2 * k : -k]) <= tolerance:
        return None
    return (
        f"latentcv train: note: stopped at the epoch cap (epochs = {epochs}) while val accuracy was still "
        f"rising: raise [training] epochs ({key} {acc[-2 * k]:.3f} -> {acc[-1]:.3f} over the last {2 * k} epochs)"
    )


def validation_metrics(model: HierarchicalAutoencoder, samples, cfg: Config, device, centroids) -> Dict[str, float]:
    """Validation loss parts and accuracies (frame: separation head and nearest centroid;
    molecule: head > 0.5 vs the per-molecule labels)."""
    model.eval()
    g = torch.Generator().manual_seed(cfg.training.seed + 7919)
    sums: Dict[str, float] = {}
    n = 0
    with torch.no_grad():
        for k in range(0, len(samples), cfg.training.batch_size):
            chunk = samples[k : k + cfg.training.batch_size]
            _, parts, _ = model.loss(collate(chunk, device), loss_weights(cfg), cfg.training.negatives, g)
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + v * len(chunk)
            n += len(chunk)
    res = {f"val_{k}": v / max(n, 1) for k, v in sums.items()}
    enc = encode_frames(model.encoder, samples, device)
    labels = np.array([s["label"] for s in samples])
    known = labels >= 0
    if known.any():
        z = enc["z"].to(next(model.parameters()).dtype).to(device)
        pred = (model.separation(z)[:, 0] > 0).cpu().numpy().astype(int)
        res["val_frame_acc"] = float((pred[known] == labels[known]).mean())
        if centroids is not None:
            zc = enc["z"].numpy()
            dc = np.linalg.norm(zc - centroids[0], axis=1)
            dm = np.linalg.norm(zc - centroids[1], axis=1)
            res["val_centroid_acc"] = float(((dc < dm).astype(int)[known] == labels[known]).mean())
    agree, tot = 0, 0
    for p, s in zip(enc["p_molecule"], samples):
        lab = s["mol_labels"].numpy()
        k = lab >= 0
        agree += int(((p.numpy() > 0.5).astype(int)[k] == lab[k]).sum())
        tot += int(k.sum())
    if tot:
        res["val_molecule_acc"] = agree / tot
    return res


def latent_centroids(encoder: HierarchicalEncoder, samples, device) -> Optional[np.ndarray]:
    """[2, latent_dim] mean latent vector of the crystal and of the melt samples; None
    unless both phases are present."""
    enc = encode_frames(encoder, samples, device)
    labels = np.array([s["label"] for s in samples])
    z = enc["z"].numpy()
    if not ((labels == CRYSTAL).any() and (labels == MELT).any()):
        return None
    return np.stack([z[labels == CRYSTAL].mean(0), z[labels == MELT].mean(0)])


def plot_latent(
    path: Path,
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_val: np.ndarray,
    y_val: np.ndarray,
    centroids: Optional[np.ndarray],
) -> None:
    """PNG of the latent space coloured by phase (train: dots, validation: crosses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.2))
    colours = {CRYSTAL: "tab:blue", MELT: "tab:red", -1: "tab:gray"}
    names = {CRYSTAL: "crystal", MELT: "melt", -1: "unlabeled"}

    def xy(z):
        return (z[:, 0], z[:, 1]) if z.shape[1] > 1 else (z[:, 0], np.zeros(len(z)))

    for z, y, marker, tag in ((z_train, y_train, "o", "train"), (z_val, y_val, "x", "validation")):
        for lab in (CRYSTAL, MELT, -1):
            sel = y == lab
            if sel.any():
                x0, x1 = xy(z[sel])
                ax.scatter(x0, x1, s=12, marker=marker, c=colours[lab], label=f"{names[lab]} ({tag})", alpha=0.7)
    if centroids is not None:
        c0, c1 = xy(centroids)
        ax.plot(c0, c1, "k*-", ms=12, label="centroids")
    ax.set_xlabel("z0")
    ax.set_ylabel("z1" if z_train.shape[1] > 1 else "")
    ax.legend(fontsize=7)
    ax.set_title("latentcv latent space")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_metrics(out_dir: Path, history: List[Dict[str, float]]) -> None:
    """``metrics.csv`` (one row per epoch, every key seen) and ``metrics.json`` in ``out_dir``."""
    keys: List[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=keys)
    w.writeheader()
    for row in history:
        w.writerow(row)
    write_atomically(out_dir / "metrics.csv", text.getvalue().encode(), "metrics file")
    write_atomically(out_dir / "metrics.json", json.dumps(history, indent=1).encode(), "metrics file")


def heldout_report(config_path: str, checkpoint: str, tenwolde_cutoff: float) -> Dict[str, Any]:
    """Accuracy on the held-out (validation) trajectory blocks of a run:
    frame accuracy of the nearest latent centroid, and agreement of the per-molecule head
    (p > 0.5) with the ten Wolde solid-bond criterion (``latentcv.cv_models.analysis.tenwolde``)."""
    from .analysis.tenwolde import TenWoldeConfig, ten_wolde_frame

    cfg = load_config(config_path)
    enc = load_encoder(checkpoint)
    frames = load_frames(cfg)
    _, va = split_frames(frames, cfg.data.n_blocks, cfg.data.val_fraction, cfg.training.seed, cfg.data.gap)
    s = prepare_samples(va, enc.atoms_per_molecule, enc.cutoff, enc.crystal_centroid.dtype)
    out = encode_frames(enc, s, torch.device("cpu"))
    z = out["z"].numpy()
    lab = np.array([f.label for f in va])
    c, m = enc.crystal_centroid.cpu().numpy(), enc.melt_centroid.cpu().numpy()
    pred = (np.linalg.norm(z - c, axis=1) < np.linalg.norm(z - m, axis=1)).astype(int)
    agree = tot = 0
    for f, p in zip(va, out["p_molecule"]):
        r = ten_wolde_frame(f, TenWoldeConfig(cutoff=tenwolde_cutoff))
        agree += int(((p.numpy() > 0.5) == r.solid).sum())
        tot += len(r.solid)
    known = lab >= 0
    return {
        "n_val_frames": len(va),
        "frame_accuracy": float((pred[known] == lab[known]).mean()),
        "molecule_agreement_ten_wolde": agree / max(tot, 1),
    }
