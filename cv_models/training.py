"""Training of the hierarchical graph autoencoder: ``latentcv train CONFIG``.

:func:`train_from_config` reads a TOML/JSON config (:mod:`latentcv.cv_models.config`), loads the
frames, splits them by contiguous trajectory blocks, trains with AdamW (tqdm progress
bar, checkpoints every epoch, resume, early stopping), writes ``metrics.csv`` /
``metrics.json`` and ``latent.png`` to the output folder (:mod:`latentcv.cv_models.diagnostics`), stores the crystal and melt
centroids of the latent space, and returns the path of the final checkpoint
``checkpoint.pt`` (:mod:`latentcv.cv_models.checkpoint` reads it back).

Reproducibility: the seed fixes the initialisation, and every epoch draws its batch order
and negative pairs from a generator seeded with (seed, epoch), so a resumed run repeats
the uninterrupted one exactly.

The module is a little over 400 lines because one run's start, epochs, checks,
checkpoints and finish share its state (``_Run``); what training reports lives in
:mod:`.diagnostics` and the data-parallel parts in :mod:`.distributed`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .batching import collate, encode_frames, prepare_samples
from .checkpoint import CHECKPOINT_VERSION, load_checkpoint, write_checkpoint
from .config import Config, ConfigError, ModelConfig, load_config
from .data.frames import Frame, check_frames
from .data.sources import load_frames
from .data.split import split_frames
from .autoencoder import HierarchicalAutoencoder
from .atomic_write import write_atomically
from .diagnostics import (
    epoch_cap_note,
    epoch_line,
    latent_centroids,
    loss_weights,
    plot_latent,
    validation_metrics,
    write_metrics,
)

__all__ = [
    "train",
    "train_from_config",
    "resolve_model_config",
    "assign_molecule_labels",
    "TrainingDivergedError",
]


class TrainingDivergedError(RuntimeError):
    """The loss, a gradient or a weight became NaN or infinite: training stops, no
    checkpoint is written over the last good one."""


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
            raise ConfigError(
                f"frame {f.trajectory}:{f.index} has {f.n_atoms} atoms in {f.n_molecules} molecules; "
                f"the model needs {a} atoms per molecule"
            )
        if not np.array_equal(f.species.reshape(-1, a), np.tile(pattern, (f.n_atoms // a, 1))):
            raise ConfigError(f"frame {f.trajectory}:{f.index}: every molecule must have the species pattern {pattern}")
    species = list(model.species) or pattern
    if len(species) != a:
        raise ConfigError(f"[model] species has {len(species)} entries but molecules have {a} atoms")
    n_species = max(model.n_species, max(species) + 1)
    return dataclasses.replace(model, atoms_per_molecule=a, species=species, n_species=n_species)


def assign_molecule_labels(
    frames: Sequence[Frame],
    how: str,
    cutoff: float,
    p2_threshold: float = 0.5,
    progress: bool = True,
    *,
    neighbours: int = 12,
    min_neighbours: int = 0,
    target: str = "any",
) -> None:
    """Fill ``Frame.molecule_labels`` where absent from a local criterion on molecule
    centres (``[data] molecule_labels``): ``"ten_wolde"`` (solid-bond count),
    ``"local_p2"`` (mean P2 of the molecule axes with the neighbours' above
    ``p2_threshold``) or ``"chill_plus"`` (cubic or hexagonal ice by CHILL+), over the
    ``neighbours`` nearest centres (0: all within ``cutoff``, then at least
    ``min_neighbours`` of them); ``target = "close_packed"`` keeps fcc/hcp-like molecules
    only (:mod:`.analysis.labels`). ``"frame"`` leaves them to the frame label
    (:func:`prepare_samples`). ``progress``: a progress bar for 50 frames or more."""
    if how == "frame":
        return
    from tqdm.auto import tqdm

    from .analysis.labels import LABEL_CRITERIA, LabelConfig, molecule_labels

    if how not in LABEL_CRITERIA:
        raise ConfigError(f"[data] molecule_labels = {how!r}: one of {('frame', *LABEL_CRITERIA)}")
    cfg = LabelConfig(how, cutoff, neighbours, min_neighbours, p2_threshold, target=target)
    try:
        cfg.validate()
    except ValueError as exc:
        raise ConfigError(f"[data] per-molecule labels: {exc}") from None
    todo = [f for f in frames if f.molecule_labels is None]
    for f in tqdm(todo, desc=f"latentcv {how} labels", unit="frame", disable=not progress or len(todo) < 50):
        f.molecule_labels = molecule_labels(f, cfg)


# ---------------------------------------------------------------------------- training loop
def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("[training] device = 'cuda' but CUDA is not available here")
    return torch.device(name)


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

        from torch.multiprocessing.spawn import ProcessRaisedException

        frames = list(frames) if frames is not None else load_frames(cfg)
        try:
            return Path(run_processes(cfg.training.processes, _train, cfg, frames))
        except ProcessRaisedException as exc:  # its text is the process's traceback: keep the error line
            raise _process_error(str(exc), cfg.training.processes) from None
    return _train(cfg, frames)


def _process_error(traceback_text: str, processes: int) -> RuntimeError:
    """The error of a training process, from the last line of its traceback
    (``module.Class: message``), as a TrainingDivergedError or RuntimeError."""
    last = traceback_text.strip().splitlines()[-1] if traceback_text.strip() else "unknown error"
    name, sep, message = last.partition(": ")
    if not sep or " " in name:
        name, message = "", last
    cls = TrainingDivergedError if name.endswith("TrainingDivergedError") else RuntimeError
    return cls(
        f"{message} (in one of {processes} training processes{'' if cls is TrainingDivergedError else ', ' + name})"
    )


@dataclass
class _Run:
    """One training run in one process: what the epochs share.

    ``tr`` / ``va``: training and validation samples (:func:`prepare_samples`);
    ``state``: epoch, best monitored loss, epochs without improvement, stopped flag and
    the history rows, saved in every checkpoint so that a resumed run continues exactly.
    """

    cfg: Config
    mcfg: ModelConfig
    out_dir: Path
    writer: bool
    device: torch.device
    train_frames: List[Frame]
    tr: List[Dict[str, Any]]
    va: List[Dict[str, Any]]
    model: HierarchicalAutoencoder
    opt: torch.optim.Optimizer
    state: Dict[str, Any]


def _train(cfg: Config, frames: Optional[Sequence[Frame]] = None, rank: int = 0, world: int = 1) -> Path:
    """:func:`train` in process ``rank`` of ``world`` (only rank 0 writes files)."""
    from tqdm import tqdm

    run = _start(cfg, frames, writer=rank == 0)
    t = cfg.training
    bar = tqdm(
        range(run.state["epoch"], t.epochs),
        disable=not (t.progress and run.writer),
        desc="latentcv train",
        unit="epoch",
    )
    for epoch in bar:
        if run.state["stopped"]:
            break
        row = _epoch(run, epoch, rank, world)
        if t.progress:
            bar.set_postfix({k: f"{row[k]:.3g}" for k in ("train_total", "val_total", "val_frame_acc") if k in row})
        elif run.writer:  # --no-progress: one line per epoch instead of the bar
            print(epoch_line(row, t.epochs), flush=True)
        if run.state["stopped"]:
            break
    bar.close()
    note = epoch_cap_note(run.state, t.epochs)
    if note and run.writer:
        print(note, flush=True)
    return _finish(run)


def _start(cfg: Config, frames: Optional[Sequence[Frame]], writer: bool) -> _Run:
    """Frames, split, samples, model and optimiser of a run; restored from ``init_from`` or
    from ``checkpoint_last.pt`` (resume) when the config asks."""
    t = cfg.training
    torch.set_num_threads(t.threads)
    out_dir = cfg.resolve(t.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = list(frames) if frames is not None else load_frames(cfg)
    try:
        check_frames(frames)
    except ValueError as exc:
        raise ConfigError(f"cannot train on these frames: {exc}") from None
    mcfg = resolve_model_config(cfg.model, frames)
    dtype = torch.float64 if mcfg.dtype == "float64" else torch.float32
    device = _device(t.device)
    assign_molecule_labels(
        frames,
        cfg.data.molecule_labels,
        cfg.data.label_cutoff or mcfg.cutoff,
        cfg.data.p2_threshold,
        progress=t.progress and writer,
        neighbours=cfg.data.label_neighbours,
        min_neighbours=cfg.data.label_min_neighbours,
        target=cfg.data.label_target,
    )
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
    run = _Run(
        cfg,
        mcfg,
        out_dir,
        writer,
        device,
        train_frames,
        tr,
        va,
        model,
        opt,
        {"epoch": 0, "best": math.inf, "bad": 0, "stopped": False, "history": []},
    )
    _restore(run)
    if writer:
        (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    return run


def _restore(run: _Run) -> None:
    """Load ``[training] init_from`` (weights only), then ``checkpoint_last.pt`` when resuming."""
    t, model_config = run.cfg.training, dataclasses.asdict(run.mcfg)
    if t.init_from:
        init = load_checkpoint(run.cfg.resolve(t.init_from))
        if init.get("model_config") != model_config:
            raise ConfigError(
                f"[training] init_from = {t.init_from!r} was trained with a different [model]; "
                "use the same [model] table (or no init_from)"
            )
        run.model.load_state_dict(init["model_state"])
    last = run.out_dir / "checkpoint_last.pt"
    if t.resume and last.exists():
        ck = load_checkpoint(last)
        if ck.get("model_config") != model_config:
            raise ConfigError(f"{last} was written with a different [model]; delete it or set resume = false")
        run.model.load_state_dict(ck["model_state"])
        run.opt.load_state_dict(ck["optimizer_state"])
        run.state = ck["train_state"]


def _likely_cause(run: _Run) -> str:
    """What to fix when training diverges: the learning rate (the inputs were checked when read)."""
    t, last = run.cfg.training, run.out_dir / "checkpoint_last.pt"
    kept = (
        f"{last} keeps the last good epoch (resume from it, or rerun with --no-resume)"
        if last.exists()
        else "no checkpoint was written"
    )
    return (
        f"the likely cause is a learning rate too high ([training] lr = {t.lr:g}: lower it, e.g. "
        f"--set training.lr={t.lr / 10:g}) or non-finite input frames; {kept}"
    )


def _check_step(run: _Run, epoch: int, step: int, batch: List[int], what: str, value: float) -> None:
    """TrainingDivergedError naming the epoch, step and batch frames when ``value`` (the
    batch loss or gradient norm) is not finite."""
    if math.isfinite(value):
        return
    names = ", ".join(f"{f.trajectory}:{f.index}" for f in (run.train_frames[i] for i in batch[:4]))
    more = f" and {len(batch) - 4} more" if len(batch) > 4 else ""
    raise TrainingDivergedError(
        f"training stopped at epoch {epoch}, step {step}: the {what} is {value} on the batch "
        f"of frames {names}{more}; {_likely_cause(run)}"
    )


def _checkpoint(run: _Run, path: Path, with_opt: bool, extra: Optional[Dict[str, Any]] = None) -> None:
    """Write a checkpoint (rank 0 only): model, configs, train state, optimiser if asked.
    Never one with a non-finite weight (TrainingDivergedError: the last good file stays)."""
    if not run.writer:
        return
    bad = [name for name, v in run.model.state_dict().items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise TrainingDivergedError(
            f"training stopped: weight {bad[0]} is not finite ({len(bad)} tensor(s)); "
            f"{path.name} not written; {_likely_cause(run)}"
        )
    ck = {
        "version": CHECKPOINT_VERSION,
        "model_config": dataclasses.asdict(run.mcfg),
        "config": run.cfg.to_dict(),
        "config_dir": str(Path(run.cfg.base_dir).resolve()),
        "model_state": run.model.state_dict(),
        "train_state": run.state,
        "output_names": run.model.encoder.output_names(),
    }
    if with_opt:
        ck["optimizer_state"] = run.opt.state_dict()
    ck.update(extra or {})
    write_checkpoint(path, ck)


def _epoch(run: _Run, epoch: int, rank: int, world: int) -> Dict[str, float]:
    """One epoch: the optimiser steps, validation, early-stopping bookkeeping and the
    checkpoints / metrics files; returns the epoch's history row."""
    t, model, state = run.cfg.training, run.model, run.state
    t0 = time.time()
    model.train()
    g = torch.Generator().manual_seed(t.seed * 1_000_003 + epoch)
    perm = torch.randperm(len(run.tr), generator=g).tolist()
    weights = loss_weights(run.cfg)
    sums: Dict[str, float] = {}
    for k in range(0, len(perm), t.batch_size):
        chunk = [run.tr[p] for p in perm[k : k + t.batch_size]]
        run.opt.zero_grad()
        if world == 1:
            loss, parts, _ = model.loss(collate(chunk, run.device), weights, t.negatives, g)
            _check_step(run, epoch, k // t.batch_size, perm[k : k + t.batch_size], "loss", parts["total"])
            loss.backward()
        else:
            parts = _share_step(model, chunk, rank, world, weights, t.negatives, g, run.device)
            _check_step(run, epoch, k // t.batch_size, perm[k : k + t.batch_size], "loss", parts["total"])
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0))
        _check_step(run, epoch, k // t.batch_size, perm[k : k + t.batch_size], "gradient norm", norm)
        run.opt.step()
        for key, v in parts.items():
            sums[key] = sums.get(key, 0.0) + v * len(chunk)
    row: Dict[str, float] = {"epoch": epoch}
    row.update({f"train_{k}": v / len(run.tr) for k, v in sums.items()})
    cents = latent_centroids(model.encoder, run.tr, run.device)
    if run.va:
        row.update(validation_metrics(model, run.va, run.cfg, run.device, cents))
        monitor = row["val_total"]
    else:
        monitor = row["train_total"]
    for key in ("train_total", "val_total"):
        if key in row and not math.isfinite(row[key]):
            raise TrainingDivergedError(f"training stopped at epoch {epoch}: {key} = {row[key]}; {_likely_cause(run)}")
    row["time_s"] = time.time() - t0
    state["history"].append(row)
    state["epoch"] = epoch + 1
    if monitor < state["best"] - t.min_delta:
        state["best"] = monitor
        state["bad"] = 0
        _checkpoint(run, run.out_dir / "checkpoint_best.pt", False)
    else:
        state["bad"] += 1
    if t.patience and state["bad"] >= t.patience:
        state["stopped"] = True
    _checkpoint(run, run.out_dir / "checkpoint_last.pt", True)
    if run.writer:
        write_metrics(run.out_dir, state["history"])
    return row


def _finish(run: _Run) -> Path:
    """Best model, latent centroids, ``checkpoint.pt``, and (rank 0) the latent map and
    ``summary.json``; returns the final checkpoint's path."""
    model, tr, va, out_dir = run.model, run.tr, run.va, run.out_dir
    best = out_dir / "checkpoint_best.pt"
    if best.exists():
        model.load_state_dict(load_checkpoint(best)["model_state"])
    cents = latent_centroids(model.encoder, tr, run.device)
    if cents is not None:
        model.encoder.set_centroids(torch.tensor(cents[0]), torch.tensor(cents[1]))
    summary = dict(run.state["history"][-1]) if run.state["history"] else {}
    if va:
        summary.update(validation_metrics(model, va, run.cfg, run.device, cents))
    final = out_dir / "checkpoint.pt"
    _checkpoint(
        run,
        final,
        False,
        {
            "centroids": None if cents is None else {"crystal": cents[0].tolist(), "melt": cents[1].tolist()},
            "summary": summary,
            "split": {"train": sorted({f.trajectory for f in run.train_frames}), "n_train": len(tr), "n_val": len(va)},
        },
    )
    if not run.writer:
        return final
    ztr = encode_frames(model.encoder, tr, run.device)["z"].numpy()
    zva = encode_frames(model.encoder, va, run.device)["z"].numpy() if va else np.zeros((0, run.mcfg.latent_dim))
    plot_latent(
        out_dir / "latent.png",
        ztr,
        np.array([s["label"] for s in tr]),
        zva,
        np.array([s["label"] for s in va], dtype=int),
        cents,
    )
    write_atomically(out_dir / "summary.json", json.dumps(summary, indent=2).encode(), "training summary")
    return final


def _share_step(
    model: HierarchicalAutoencoder,
    chunk: List[Dict[str, Any]],
    rank: int,
    world: int,
    weights: Dict[str, float],
    negatives: int,
    g: torch.Generator,
    device: torch.device,
) -> Dict[str, float]:
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


def train_from_config(path: str, overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> Path:
    """``latentcv train CONFIG``: load and validate the config file, train, return the
    final checkpoint path."""
    return train(load_config(path, overrides))
