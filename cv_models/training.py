"""Training of the hierarchical graph autoencoder: ``latentcv train CONFIG``.

:func:`train_from_config` reads a TOML/JSON config (:mod:`latentcv.cv_models.config`), loads the
frames, splits them by contiguous trajectory blocks, trains with AdamW (tqdm progress
bar, checkpoints every epoch, resume, early stopping), writes ``metrics.csv`` /
``metrics.json`` and ``latent.png`` to the output folder, stores the crystal and melt
centroids of the latent space, and returns the path of the final checkpoint
``checkpoint.pt`` (:mod:`latentcv.cv_models.checkpoint` reads it back).

Reproducibility: the seed fixes the initialisation, and every epoch draws its batch order
and negative pairs from a generator seeded with (seed, epoch), so a resumed run repeats
the uninterrupted one exactly.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .batching import collate, encode_frames, prepare_samples
from .checkpoint import CHECKPOINT_VERSION, load_checkpoint, write_checkpoint
from .config import Config, ConfigError, ModelConfig, load_config, merge_overrides, parse_overrides
from .data.frames import CRYSTAL, MELT, Frame
from .data.sources import load_frames
from .data.split import split_frames
from .autoencoder import HierarchicalAutoencoder
from .model import HierarchicalEncoder

__all__ = [
    "train",
    "train_from_config",
    "run_train_command",
    "resolve_model_config",
    "assign_molecule_labels",
    "heldout_report",
]



# ---------------------------------------------------------------------------- data
def resolve_model_config(model: ModelConfig, frames: Sequence[Frame]) -> ModelConfig:
    """Fill ``atoms_per_molecule``, ``species`` and ``n_species`` from the data and check
    that every frame has the same molecule pattern."""
    if not frames:
        raise ConfigError("no frames to train on")
    f0 = frames[0]
    a = model.atoms_per_molecule or f0.atoms_per_molecule
    pattern = [int(s) for s in f0.species[:a]]
    for f in frames:
        if f.n_atoms % a != 0 or f.atoms_per_molecule != a:
            raise ConfigError(f"frame {f.trajectory}:{f.index} has {f.n_atoms} atoms in {f.n_molecules} molecules; "
                              f"the model needs {a} atoms per molecule")
        if not np.array_equal(f.species.reshape(-1, a), np.tile(pattern, (f.n_atoms // a, 1))):
            raise ConfigError(f"frame {f.trajectory}:{f.index}: every molecule must have the species pattern {pattern}")
    species = list(model.species) or pattern
    if len(species) != a:
        raise ConfigError(f"[model] species has {len(species)} entries but molecules have {a} atoms")
    n_species = max(model.n_species, max(species) + 1)
    return dataclasses.replace(model, atoms_per_molecule=a, species=species, n_species=n_species)


def assign_molecule_labels(frames: Sequence[Frame], how: str, cutoff: float, p2_threshold: float = 0.5) -> None:
    """Fill ``Frame.molecule_labels`` where absent from a local criterion with neighbour
    ``cutoff`` (``[data] molecule_labels``): ``"ten_wolde"`` (solid-bond count on centres)
    or ``"local_p2"`` (mean P2 of the molecule axes with the neighbours' above
    ``p2_threshold``); ``"frame"`` leaves them to the frame label (:func:`prepare_samples`)."""
    if how == "frame":
        return
    from tqdm.auto import tqdm

    if how == "ten_wolde":
        from .analysis.tenwolde import TenWoldeConfig, molecule_labels

        def label(f: Frame) -> np.ndarray:
            return molecule_labels(f, TenWoldeConfig(cutoff=cutoff))
    elif how == "local_p2":
        from .analysis.orientation import orientation_frame

        def label(f: Frame) -> np.ndarray:
            return (orientation_frame(f, cutoff).local_p2 > p2_threshold).astype(np.int64)
    else:
        raise ConfigError(f"[data] molecule_labels = {how!r}: one of 'frame', 'ten_wolde', 'local_p2'")
    todo = [f for f in frames if f.molecule_labels is None]
    for f in tqdm(todo, desc=f"latentcv {how} labels", unit="frame", disable=len(todo) < 50):
        f.molecule_labels = label(f)


def _weights(cfg: Config) -> Dict[str, float]:
    t = cfg.training
    return {"adj": t.w_adj, "feat": t.w_feat, "kl": t.w_kl if cfg.model.variational else 0.0,
            "separation": t.w_separation, "molecule": t.w_molecule}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("[training] device = 'cuda' but CUDA is not available here")
    return torch.device(name)


def _evaluate(model: HierarchicalAutoencoder, samples, cfg: Config, device, centroids) -> Dict[str, float]:
    """Validation loss parts and accuracies (frame: separation head and nearest centroid;
    molecule: head > 0.5 vs the per-molecule labels)."""
    model.eval()
    g = torch.Generator().manual_seed(cfg.training.seed + 7919)
    sums: Dict[str, float] = {}
    n = 0
    with torch.no_grad():
        for k in range(0, len(samples), cfg.training.batch_size):
            chunk = samples[k:k + cfg.training.batch_size]
            _, parts, _ = model.loss(collate(chunk, device), _weights(cfg), cfg.training.negatives, g)
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


def _centroids(encoder: HierarchicalEncoder, samples, device) -> Optional[np.ndarray]:
    enc = encode_frames(encoder, samples, device)
    labels = np.array([s["label"] for s in samples])
    z = enc["z"].numpy()
    if not ((labels == CRYSTAL).any() and (labels == MELT).any()):
        return None
    return np.stack([z[labels == CRYSTAL].mean(0), z[labels == MELT].mean(0)])


def plot_latent(path: Path, z_train: np.ndarray, y_train: np.ndarray, z_val: np.ndarray, y_val: np.ndarray,
                centroids: Optional[np.ndarray]) -> None:
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


# ---------------------------------------------------------------------------- training loop
def train(cfg: Config, frames: Optional[Sequence[Frame]] = None) -> Path:
    """Train per ``cfg``; returns the path of the final checkpoint (``checkpoint.pt``).

    Writes to ``cfg.training.output_dir``: ``checkpoint_last.pt`` (every epoch, for resume),
    ``checkpoint_best.pt`` (best validation loss), ``checkpoint.pt`` (best model with
    latent centroids), ``metrics.csv``, ``metrics.json``, ``latent.png``, ``config.json``.
    With ``[training] processes = P > 1`` the batches are shared by P data-parallel
    processes (:mod:`latentcv.cv_models.distributed`); the model is the one-process model.
    """
    if cfg.training.processes > 1:
        from latentcv.cv_models.distributed import run_processes

        frames = list(frames) if frames is not None else load_frames(cfg)
        return run_processes(cfg.training.processes, _train, cfg, frames)
    return _train(cfg, frames)


def _train(cfg: Config, frames: Optional[Sequence[Frame]] = None, rank: int = 0, world: int = 1) -> Path:
    """:func:`train` in process ``rank`` of ``world`` (only rank 0 writes files)."""
    writer = rank == 0
    t = cfg.training
    torch.set_num_threads(t.threads)
    out_dir = cfg.resolve(t.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = list(frames) if frames is not None else load_frames(cfg)
    mcfg = resolve_model_config(cfg.model, frames)
    dtype = torch.float64 if mcfg.dtype == "float64" else torch.float32
    device = _device(t.device)
    assign_molecule_labels(frames, cfg.data.molecule_labels, cfg.data.label_cutoff or mcfg.cutoff, cfg.data.p2_threshold)
    train_frames, val_frames = split_frames(frames, cfg.data.n_blocks, cfg.data.val_fraction, t.seed, cfg.data.gap)
    if not train_frames:
        raise ConfigError("the split left no training frames; lower [data] val_fraction or add trajectories")
    tr = prepare_samples(train_frames, mcfg.atoms_per_molecule, mcfg.cutoff, dtype)
    va = prepare_samples(val_frames, mcfg.atoms_per_molecule, mcfg.cutoff, dtype)

    torch.manual_seed(t.seed)
    random.seed(t.seed)
    np.random.seed(t.seed)
    model = HierarchicalAutoencoder(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    weights = _weights(cfg)
    state = {"epoch": 0, "best": math.inf, "bad": 0, "stopped": False, "history": []}
    if t.init_from:
        init = load_checkpoint(cfg.resolve(t.init_from))
        if init.get("model_config") != dataclasses.asdict(mcfg):
            raise ConfigError(f"[training] init_from = {t.init_from!r} was trained with a different [model]; "
                              "use the same [model] table (or no init_from)")
        model.load_state_dict(init["model_state"])
    last = out_dir / "checkpoint_last.pt"
    if t.resume and last.exists():
        ck = load_checkpoint(last)
        if ck.get("model_config") != dataclasses.asdict(mcfg):
            raise ConfigError(f"{last} was written with a different [model]; delete it or set resume = false")
        model.load_state_dict(ck["model_state"])
        opt.load_state_dict(ck["optimizer_state"])
        state = ck["train_state"]
    if writer:
        (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    def checkpoint(path: Path, with_opt: bool, extra: Optional[Dict[str, Any]] = None) -> None:
        if not writer:
            return
        ck = {"version": CHECKPOINT_VERSION, "model_config": dataclasses.asdict(mcfg), "config": cfg.to_dict(),
              "config_dir": str(Path(cfg.base_dir).resolve()), "model_state": model.state_dict(), "train_state": state,
              "output_names": model.encoder.output_names()}
        if with_opt:
            ck["optimizer_state"] = opt.state_dict()
        ck.update(extra or {})
        write_checkpoint(path, ck)

    from tqdm import tqdm

    bar = tqdm(range(state["epoch"], t.epochs), disable=not (t.progress and writer), desc="latentcv train",
               unit="epoch")
    for epoch in bar:
        if state["stopped"]:
            break
        t0 = time.time()
        model.train()
        g = torch.Generator().manual_seed(t.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(tr), generator=g).tolist()
        sums: Dict[str, float] = {}
        for k in range(0, len(perm), t.batch_size):
            chunk = [tr[p] for p in perm[k:k + t.batch_size]]
            opt.zero_grad()
            if world == 1:
                loss, parts, _ = model.loss(collate(chunk, device), weights, t.negatives, g)
                loss.backward()
            else:
                parts = _share_step(model, chunk, rank, world, weights, t.negatives, g, device)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + v * len(chunk)
        row: Dict[str, float] = {"epoch": epoch}
        row.update({f"train_{k}": v / len(tr) for k, v in sums.items()})
        cents = _centroids(model.encoder, tr, device)
        if va:
            row.update(_evaluate(model, va, cfg, device, cents))
            monitor = row["val_total"]
        else:
            monitor = row["train_total"]
        row["time_s"] = time.time() - t0
        state["history"].append(row)
        state["epoch"] = epoch + 1
        if monitor < state["best"] - t.min_delta:
            state["best"] = monitor
            state["bad"] = 0
            checkpoint(out_dir / "checkpoint_best.pt", False)
        else:
            state["bad"] += 1
        if t.patience and state["bad"] >= t.patience:
            state["stopped"] = True
        checkpoint(last, True)
        if writer:
            _write_metrics(out_dir, state["history"])
        bar.set_postfix({k: f"{row[k]:.3g}" for k in ("train_total", "val_total", "val_frame_acc") if k in row})
        if state["stopped"]:
            break
    bar.close()

    # final: best model, latent centroids, plot
    best = out_dir / "checkpoint_best.pt"
    if best.exists():
        model.load_state_dict(load_checkpoint(best)["model_state"])
    cents = _centroids(model.encoder, tr, device)
    if cents is not None:
        model.encoder.set_centroids(torch.tensor(cents[0]), torch.tensor(cents[1]))
    summary = dict(state["history"][-1]) if state["history"] else {}
    if va:
        summary.update(_evaluate(model, va, cfg, device, cents))
    final = out_dir / "checkpoint.pt"
    checkpoint(final, False, {"centroids": None if cents is None else {"crystal": cents[0].tolist(), "melt": cents[1].tolist()},
                              "summary": summary,
                              "split": {"train": sorted({f.trajectory for f in train_frames}),
                                        "n_train": len(tr), "n_val": len(va)}})
    if not writer:
        return final
    ztr = encode_frames(model.encoder, tr, device)["z"].numpy()
    zva = encode_frames(model.encoder, va, device)["z"].numpy() if va else np.zeros((0, mcfg.latent_dim))
    plot_latent(out_dir / "latent.png", ztr, np.array([s["label"] for s in tr]), zva,
                np.array([s["label"] for s in va], dtype=int), cents)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return final


def _share_step(model: HierarchicalAutoencoder, chunk: List[Dict[str, Any]], rank: int, world: int,
                weights: Dict[str, float], negatives: int, g: torch.Generator, device: torch.device) -> Dict[str, float]:
    """This process's share of one batch: its loss backward, gradients summed over the
    processes; returns the whole batch's loss terms (cv_models/distributed.py)."""
    from latentcv.cv_models.distributed import share_loss, shard_bounds, sum_gradients

    lo, hi = shard_bounds(len(chunk), rank, world)
    mols = [s["n_mol"] for s in chunk]
    shard = (sum(mols[:lo]), sum(mols), lo, len(chunk))
    if hi > lo:
        terms, counts, _ = model.loss_terms(collate(chunk[lo:hi], device), negatives, g, shard)
    else:  # no frame for this process: draw what the others draw, add nothing
        if negatives > 0:
            torch.rand(negatives * shard[1], generator=g, dtype=torch.float64)
        if model.encoder.variational:
            torch.randn((shard[3], model.encoder.latent_dim), generator=g, dtype=torch.float64)
        terms, counts = {}, {}
    loss, parts = share_loss(terms, counts, weights)
    if terms:
        loss.backward()
    sum_gradients(model)
    return parts


def _write_metrics(out_dir: Path, history: List[Dict[str, float]]) -> None:
    keys: List[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    with open(out_dir / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow(row)
    (out_dir / "metrics.json").write_text(json.dumps(history, indent=1))


def train_from_config(path: str, overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> Path:
    """``latentcv train CONFIG``: load and validate the config file, train, return the
    final checkpoint path."""
    return train(load_config(path, overrides))


def run_train_command(args: argparse.Namespace) -> Path:
    """Run ``latentcv train`` from parsed :func:`add_train_arguments` arguments.

    ``--set`` values go first, the named options (``--epochs`` ...) on top; both pass the
    validation of the config file. Relative paths given with ``--output-dir`` are relative
    to the current folder, those given with ``--set training.output_dir=...`` to the
    config file (as in the file)."""
    ov: Dict[str, Any] = {}
    if args.epochs is not None:
        ov["epochs"] = args.epochs
    if args.output_dir is not None:
        ov["output_dir"] = str(Path(args.output_dir).resolve())
    if args.device is not None:
        ov["device"] = args.device
    if args.no_resume:
        ov["resume"] = False
    if args.no_progress:
        ov["progress"] = False
    if getattr(args, "processes", None) is not None:
        ov["processes"] = args.processes
    path = train_from_config(args.config, merge_overrides(parse_overrides(getattr(args, "overrides", None) or []),
                                                          {"training": ov}))
    print(f"latentcv train: wrote {path}")
    return path


def heldout_report(config_path: str, checkpoint: str, tenwolde_cutoff: float) -> Dict[str, Any]:
    """Accuracy on the held-out (validation) trajectory blocks of a run:
    frame accuracy of the nearest latent centroid, and agreement of the per-molecule head
    (p > 0.5) with the ten Wolde solid-bond criterion (``latentcv.cv_models.analysis.tenwolde``)."""
    from .analysis.tenwolde import TenWoldeConfig, ten_wolde_frame

    cfg = load_config(config_path)
    from .checkpoint import load_encoder

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
    return {"n_val_frames": len(va), "frame_accuracy": float((pred[known] == lab[known]).mean()),
            "molecule_agreement_ten_wolde": agree / max(tot, 1)}
