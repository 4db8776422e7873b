"""Cost against CV quality of encoder variants on the demo's LJ data: the Pareto table.

Trains a small grid of encoder variants (``VARIANTS``: width, message-passing depth,
radial basis size, angular-moment channels; keys of ``cv_models/config.py``
``ModelConfig``) on the demo's LJ training data with the demo's training config
(``examples/lj/train.toml``, the same epochs, seed and data for every variant: equal
training budget), exports each (``latentcv export``, with its self-checks), and measures:

- parameters;
- cost per MD step of the exported model in the C++ core that LATENT_CV runs
  (``evaluate_deferred`` + one ``vector_jacobian`` on ``n_crystal``, pair list reused as
  between Verlet rebuilds) at ``--atoms`` LJ atoms (fcc, density 1.0, 0.1 σ noise), 1
  thread, the variants taking turns, best of ``--rounds``, against the plain LAMMPS LJ step at that size (ratio);
- quality on the held-out trajectory blocks (never trained on): frame accuracy (nearest
  latent centroid, crystal vs melt frames), per-molecule agreement of the head (p > 0.5)
  with the ten Wolde training labels, and the Spearman rank correlation of
  ``n_crystal / M`` with freud's independent ten Wolde solid fraction on the interface and
  freezing frames (pooled over box sizes, and the worst box size);
- optionally (``--metad-seeds``) the demo's metadynamics (256 atoms, STRIDE 5, stop when
  crystallised) for the default and the ``--metad-best`` cheapest variants that keep the
  default's quality (frame accuracy and head within 1 %, Spearman within 0.02).

    .venv/bin/python benchmarks/cost_quality.py [--dataset lj.npz] [--out /tmp/latentcv_cost_quality]
        [--epochs 30] [--variants default half ...] [--metad-seeds 1 2 3]

Without ``--dataset`` the demo's data are generated (or reused) in ``OUT/demo``. Every
stage is reused when its output exists. One process, one thread (shared machines).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import encoder_cost as ec
from latentcv.cv_models.data.frames import Frame

torch.set_num_threads(1)

# name -> (what it changes, [model] overrides); the default first (the reference row)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("ModelConfig defaults", {}),
    "half": ("half width", {"hidden": 8, "stage2_hidden": 8, "molecule_latent": 4}),
    "quarter": ("quarter width", {"hidden": 4, "stage2_hidden": 4, "molecule_latent": 2}),
    "no_stage2": ("no stage-2 attention layer", {"stage2_layers": 0}),
    "rbf4": ("4 radial basis functions", {"rbf": 4}),
    "moments2": ("2 angular channels", {"moment_channels": 2}),
    "moments1": ("1 angular channel", {"moment_channels": 1}),
    "moments0": ("angular moments off", {"moment_channels": 0}),
    "moments2_no_stage2": ("2 angular channels, no stage 2", {"moment_channels": 2, "stage2_layers": 0}),
    "moments1_no_stage2": ("1 angular channel, no stage 2", {"moment_channels": 1, "stage2_layers": 0}),
    "lean": (
        "half width, rbf 4, 2 angular channels, no stage 2",
        {"hidden": 8, "stage2_hidden": 8, "molecule_latent": 4, "rbf": 4, "moment_channels": 2, "stage2_layers": 0},
    ),
}
TRAIN_TOML = Path(__file__).resolve().parents[1] / "examples" / "lj" / "train.toml"


@dataclass
class Row:
    """One variant's measurements."""

    name: str
    what: str
    model: str = ""  # the exported model file
    params: int = 0
    forward_ms: float = float("nan")
    backward_ms: float = float("nan")
    train_s: float = float("nan")
    frame_accuracy: float = float("nan")
    molecule_agreement: float = float("nan")
    spearman: float = float("nan")
    spearman_worst: float = float("nan")
    metad: list[int | None] = field(default_factory=list)
    metad_ms: float = float("nan")  # median ms per biased step of those runs (256 atoms)
    pareto: bool = False
    keeps: bool = False  # quality within the tolerances of the default (``mark_keeps``)

    @property
    def step_ms(self) -> float:
        return self.forward_ms + self.backward_ms


def labelled_dataset(out: Path, dataset: Path | None) -> Path:
    """The demo's LJ frames with their per-molecule ten Wolde labels (computed once, as
    training would, so every variant trains on identical targets): ``OUT/lj_labelled.npz``."""
    from latentcv.cv_models.config import load_config
    from latentcv.cv_models.data.dataset import Dataset
    from latentcv.cv_models.training import assign_molecule_labels

    target = out / "lj_labelled.npz"
    if target.exists():
        return target
    if dataset is None:
        from latentcv.cv_models.app.demo import DemoConfig, prepare_data

        dataset, _ = prepare_data(out / "demo", DemoConfig())
    d = load_config(TRAIN_TOML, {"data": {"dataset": str(dataset)}}).data
    frames = list(Dataset.load(dataset))
    assign_molecule_labels(
        frames,
        d.molecule_labels,
        d.label_cutoff,
        d.p2_threshold,
        progress=False,
        neighbours=d.label_neighbours,
        min_neighbours=d.label_min_neighbours,
        target=d.label_target,
    )
    Dataset(frames).save(target)
    return target


def train_variant(name: str, model: dict[str, Any], dataset: Path, out: Path, epochs: int | None) -> tuple[Path, float]:
    """Train one variant with the demo's config; reuse a finished run. Returns the
    checkpoint and the training wall time (s)."""
    from latentcv.cv_models.training import train_from_config

    run = out / "runs" / name
    checkpoint, stamp = run / "checkpoint.pt", run / "cost_quality.json"
    if checkpoint.exists() and stamp.exists():
        return checkpoint, json.loads(stamp.read_text())["train_s"]
    training: dict[str, Any] = {"output_dir": str(run), "resume": False, "progress": False, "threads": 1}
    if epochs is not None:
        training["epochs"] = epochs
    start = time.perf_counter()
    checkpoint = train_from_config(
        str(TRAIN_TOML), {"data": {"dataset": str(dataset)}, "model": model, "training": training}
    )
    seconds = time.perf_counter() - start
    stamp.write_text(json.dumps({"model": model, "epochs": epochs, "train_s": seconds}))
    return Path(checkpoint), seconds


def export_variant(checkpoint: Path) -> Path:
    """``latentcv export`` (float64 TorchScript, self-checks) next to the checkpoint."""
    from latentcv.export.from_checkpoint import export_checkpoint

    model = checkpoint.parent / "model.pt"
    if not model.exists():
        export_checkpoint(checkpoint, model, log=lambda line: None, species_masses=[1.0])
    return model


def step_costs(paths: list[Path], atoms: int, rounds: int) -> list[tuple[float, float]]:
    """(forward, backward) ms of one LATENT_CV step in the C++ core for each model: values
    with the autograd graph kept, then one vector–Jacobian product on ``n_crystal``. The
    models take turns (``rounds`` rounds after a warm-up one), and each keeps its best
    call: on a shared machine the load of the moment falls on every variant alike."""
    from latentcv.cv_models.native import core

    pos, cell = ec.lj_frame(atoms)
    pos, cell = np.ascontiguousarray(pos.numpy()), np.ascontiguousarray(cell.numpy())
    models = [core.Model(str(p), threads=1) for p in paths]
    weights = [[1.0 if n == "n_crystal" else 0.0 for n in m.output_names] for m in models]
    best = [[float("inf"), float("inf")] for _ in models]
    for k in range(rounds + 1):
        for m, w, b in zip(models, weights, best):
            for _ in range(2):
                t0 = time.perf_counter()
                m.evaluate_deferred(pos, cell)
                t1 = time.perf_counter()
                m.vector_jacobian(w)
                if k:
                    b[0], b[1] = min(b[0], t1 - t0), min(b[1], time.perf_counter() - t1)
    return [(1e3 * f, 1e3 * b) for f, b in best]


@dataclass
class HeldOut:
    """The held-out frames and their references, computed once for every variant."""

    frames: list[Frame]
    along_path: list[int]  # indices of interface / freezing frames
    freud_fraction: np.ndarray  # freud ten Wolde solid fraction of those frames


def held_out_frames(dataset: Path) -> HeldOut:
    """The validation blocks of the demo's split (train.toml's n_blocks, val_fraction,
    seed), and freud's solid fraction of their interface / freezing frames."""
    from latentcv.cv_models.analysis.crystallinity import freud_solid_fraction
    from latentcv.cv_models.config import load_config
    from latentcv.cv_models.data.dataset import Dataset
    from latentcv.cv_models.data.split import split_frames

    cfg = load_config(TRAIN_TOML, {"data": {"dataset": str(dataset)}})
    _, va = split_frames(list(Dataset.load(dataset)), cfg.data.n_blocks, cfg.data.val_fraction, cfg.training.seed)
    path = [k for k, f in enumerate(va) if "interface" in f.trajectory or "transition" in f.trajectory]
    cutoff = cfg.data.label_cutoff or cfg.model.cutoff
    return HeldOut(va, path, np.array([freud_solid_fraction(va[k], cutoff) for k in path]))


def quality(checkpoint: Path, held: HeldOut) -> dict[str, float]:
    """Frame accuracy (nearest latent centroid, labelled frames), per-molecule agreement
    with the ten Wolde labels, Spearman of n_crystal / M with freud (pooled; worst size)."""
    from scipy.stats import spearmanr

    from latentcv.cv_models.batching import encode_frames, prepare_samples
    from latentcv.cv_models.checkpoint import load_encoder

    enc = load_encoder(checkpoint)
    samples = prepare_samples(held.frames, enc.atoms_per_molecule, enc.cutoff, enc.crystal_centroid.dtype)
    out = encode_frames(enc, samples, torch.device("cpu"))
    z, c, m = out["z"].numpy(), enc.crystal_centroid.numpy(), enc.melt_centroid.numpy()
    crystal = np.linalg.norm(z - c, axis=1) < np.linalg.norm(z - m, axis=1)
    labels = np.array([f.label for f in held.frames])
    known = labels >= 0
    agree = np.concatenate([(p.numpy() > 0.5) == f.molecule_labels for p, f in zip(out["p_molecule"], held.frames)])
    sizes = np.array([held.frames[k].n_molecules for k in held.along_path])
    fraction = out["n_crystal"].double().numpy()[held.along_path] / sizes
    per_size = [spearmanr(fraction[sizes == s], held.freud_fraction[sizes == s]).statistic for s in set(sizes)]
    return {
        "frame_accuracy": float((crystal[known] == (labels[known] == 1)).mean()),
        "molecule_agreement": float(agree.mean()),
        "spearman": float(spearmanr(fraction, held.freud_fraction).statistic),
        "spearman_worst": float(min(per_size)),
    }


def metad_steps(model: Path, folder: Path, seeds: list[int]) -> tuple[list[int | None], float]:
    """The demo's metadynamics on ``model`` for each seed: the step it crystallised
    (freud ten Wolde > 0.8 held 5 000 steps), None if not within the demo's budget, and the
    median ms per biased step.
    A seed's result is kept in ``folder/seedK.json`` and reused while the model is unchanged."""
    from dataclasses import replace

    from latentcv.cv_models.app.demo import DemoConfig, metad_config
    from latentcv.cv_models.app.metad_run import run_metadynamics

    runs = []
    for seed in seeds:
        done = folder / f"seed{seed}.json"
        if not (done.exists() and done.stat().st_mtime > model.stat().st_mtime):
            cfg = replace(DemoConfig(), seed=seed, progress=False)
            run = run_metadynamics(metad_config(folder, model, cfg, folder=folder / f"seed{seed}"))
            done.write_text(json.dumps({"crystallised_at": run.crystallised_at, "ms_per_step": run.ms_per_step}))
        runs.append(json.loads(done.read_text()))
    return [r["crystallised_at"] for r in runs], float(np.median([r["ms_per_step"] for r in runs]))


def mark_keeps(rows: list[Row], accuracy: float = 0.01, spearman: float = 0.02) -> None:
    """A variant keeps the default's quality (``rows[0]``) when its frame accuracy and its
    head's agreement with ten Wolde are within ``accuracy`` and its pooled Spearman within
    ``spearman`` of the default's."""
    ref = rows[0]
    for r in rows:
        r.keeps = (
            r.frame_accuracy >= ref.frame_accuracy - accuracy
            and r.molecule_agreement >= ref.molecule_agreement - accuracy
            and r.spearman >= ref.spearman - spearman
        )


def mark_pareto(rows: list[Row]) -> None:
    """Pareto-optimal: no other row is at most as costly and at least as good in frame
    accuracy, molecule agreement and Spearman, and strictly better in one of them."""

    def key(r: Row) -> tuple[float, ...]:
        return (-r.step_ms, r.frame_accuracy, r.molecule_agreement, r.spearman)

    for r in rows:
        a = key(r)
        r.pareto = not any(
            all(x >= y for x, y in zip(key(o), a)) and any(x > y for x, y in zip(key(o), a)) for o in rows if o is not r
        )


def markdown(rows: list[Row], plain_ms: float, atoms: int) -> str:
    """The Pareto table (ratio to the plain LAMMPS step at ``atoms``; * = Pareto-optimal)."""
    ref = rows[0]
    lines = [
        f"| variant | params | fwd + vjp ms ({atoms} atoms) | × plain MD | × default | frame accuracy | "
        "head vs ten Wolde | Spearman vs freud (pooled / worst size) | keeps quality | train s | "
        "metad: crystallised at step | metad ms/step | Pareto |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md = ", ".join("–" if s is None else str(s) for s in r.metad) or "not run"
        lines.append(
            f"| {r.name} ({r.what}) | {r.params} | {r.step_ms:.1f} | {r.step_ms / plain_ms:.1f} | "
            f"{r.step_ms / ref.step_ms:.2f} | {100 * r.frame_accuracy:.1f} % | {100 * r.molecule_agreement:.1f} % | "
            f"{r.spearman:.3f} / {r.spearman_worst:.3f} | {'yes' if r.keeps else 'no'} | {r.train_s:.0f} | {md} | "
            f"{'' if np.isnan(r.metad_ms) else f'{r.metad_ms:.2f}'} | {'*' if r.pareto else ''} |"
        )
    return "\n".join(lines)


def measure(name: str, a: argparse.Namespace, dataset: Path, held: HeldOut) -> Row:
    """Train, export and score one variant (printing as it goes); timed later, with the others."""
    from latentcv.cv_models.checkpoint import load_encoder

    what, model = VARIANTS[name]
    row = Row(name, what)
    checkpoint, row.train_s = train_variant(name, model, dataset, a.out, a.epochs)
    row.model = str(export_variant(checkpoint))
    row.params = sum(p.numel() for p in load_encoder(checkpoint).parameters())
    for key, value in quality(checkpoint, held).items():
        setattr(row, key, value)
    print(
        f"[cost_quality] {name}: {row.params} params, trained {row.train_s:.0f} s, acc {row.frame_accuracy:.3f}, "
        f"head {row.molecule_agreement:.4f}, spearman {row.spearman:.4f}/{row.spearman_worst:.4f}",
        flush=True,
    )
    return row


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, default=None, help="the demo's lj.npz (default: generate into OUT/demo)")
    p.add_argument("--out", type=Path, default=Path("/tmp/latentcv_cost_quality"))
    p.add_argument("--epochs", type=int, default=None, help="training epochs of every variant (default: train.toml's)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--atoms", type=int, default=2048, choices=sorted(ec.CELLS))
    p.add_argument("--rounds", type=int, default=10, help="timing rounds (the variants take turns)")
    p.add_argument("--metad-seeds", type=int, nargs="*", default=[], help="demo metadynamics seeds (default: none)")
    p.add_argument(
        "--metad-best", type=int, default=2, help="the cheapest variants that keep quality run besides the default"
    )
    a = p.parse_args()
    if a.variants[0] != "default":
        a.variants = ["default"] + [v for v in a.variants if v != "default"]
    return a


def main() -> None:
    a = parse_args()
    a.out = a.out.resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    dataset = labelled_dataset(a.out, a.dataset.resolve() if a.dataset else None)
    held = held_out_frames(dataset)
    plain_ms = ec.lammps_ms_per_step(a.atoms, max(200, 1_000_000 // a.atoms))
    rows = [measure(name, a, dataset, held) for name in a.variants]
    costs = step_costs([Path(r.model) for r in rows], a.atoms, a.rounds)
    for r, (forward, backward) in zip(rows, costs):
        r.forward_ms, r.backward_ms = forward, backward
    mark_pareto(rows)
    mark_keeps(rows)
    if a.metad_seeds:
        cheap = sorted((r for r in rows[1:] if r.keeps), key=lambda r: r.step_ms)[: a.metad_best]
        for r in [rows[0], *cheap]:
            r.metad, r.metad_ms = metad_steps(Path(r.model), a.out / "metad" / r.name, a.metad_seeds)
    (a.out / "cost_quality.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=str))
    print(
        f"\nplain LAMMPS LJ step at {a.atoms} atoms: {plain_ms:.3f} ms; held-out frames {len(held.frames)} "
        f"({len(held.along_path)} interface/freezing); epochs {a.epochs or 'train.toml'}; 1 thread\n"
    )
    print(markdown(rows, plain_ms, a.atoms))


if __name__ == "__main__":
    main()
