"""Labels that name the target crystal, with the frames that show the bias's wrong turns.

A crystal head trained on thermal crystal, melt and interface frames has never seen the
stacking-disordered, hcp-rich solid that biased runs of the dimers end in, so even with
``label_target = "fcc"`` it reads hcp-like molecules as half crystal. This script adds the
last ``--frames`` frames of biased runs (``latentcv compare`` run folders, their
``traj.dump``) to a saved dataset, with every stored label cleared so that the config's
criterion and ``label_target`` label them, trains and exports a model
(``<out>/model.pt``), and prints, on the last frame of held-out runs, each model's mean
crystal-likeness over the molecules that are fcc-like, hcp-like (close-packed, not fcc)
and neither, by latentcv's own common-neighbour test (``labels.common_neighbour_signatures``).

    .venv/bin/python benchmarks/target_labels.py --dataset DATA.npz --config examples/dimers/train.toml \\
        --runs RUN ... --held-out RUN ... --compare NAME=MODEL ... --out DIR [--target fcc] [--frames 4]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from latentcv.cv_models.analysis.labels import LabelConfig, common_neighbour_signatures
from latentcv.cv_models.app.evaluate import molecule_outputs
from latentcv.cv_models.config import load_config
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.data.molecules import frame_centers
from latentcv.cv_models.data.readers import read_trajectory
from latentcv.cv_models.training import train
from latentcv.export.from_checkpoint import export_checkpoint


def harvested_dataset(dataset: str, runs: list[str], frames: int, apm: int) -> Dataset:
    """The saved frames plus the last ``frames`` of each run's dump (label -1: mixed), no stored labels."""
    out = [dataclasses.replace(f, molecule_labels=None) for f in Dataset.load(dataset)]
    for run in runs:
        dump = read_trajectory(Path(run) / "traj.dump", atoms_per_molecule=apm)[-frames:]
        name = f"biased-{Path(run).parent.parent.name}-{Path(run).name}"
        out += [dataclasses.replace(f, label=-1, molecule_labels=None, trajectory=name) for f in dump]
    data = Dataset()
    data.extend(out)
    return data


def structure_table(models: list[tuple[str, str]], held_out: list[str], apm: int) -> None:
    """Mean crystal-likeness by local structure on each held-out run's last frame (markdown)."""
    frames = [read_trajectory(Path(run) / "traj.dump", atoms_per_molecule=apm)[-1] for run in held_out]
    enough = LabelConfig().close_packed_min
    kinds = []  # per frame: (fcc-like, hcp-like, neither) masks
    for frame in frames:
        n421, n422 = common_neighbour_signatures(frame_centers(frame), frame.cell)
        fcc = n421 >= enough
        packed = n421 + n422 >= enough
        kinds.append((fcc, packed & ~fcc, ~packed))
    readings = {name: molecule_outputs(model, frames) for name, model in models}  # each model loaded once
    print(
        "| held-out run, last frame | fcc-like / hcp-like / other (%) | model | n_crystal | p fcc-like | p hcp-like | p other |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for k, run in enumerate(held_out):
        share = " / ".join(f"{100 * mask.mean():.0f}" for mask in kinds[k])
        for name, _ in models:
            p = readings[name][k][0][:, 0]
            means = " | ".join(f"{p[mask].mean():.2f}" for mask in kinds[k])
            print(f"| {Path(run).parent.parent.name} {Path(run).name} | {share} | {name} | {p.sum():.0f} | {means} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="saved Dataset (.npz) of the starting model")
    ap.add_argument("--config", required=True, help="training config (its [data] source is replaced)")
    ap.add_argument("--runs", nargs="+", default=[], help="biased run folders to harvest")
    ap.add_argument("--held-out", nargs="+", default=[], help="run folders to judge the models on")
    ap.add_argument("--compare", nargs="*", default=[], help="NAME=MODEL: other models in the table")
    ap.add_argument("--target", default="fcc", help="label_target of the new model")
    ap.add_argument("--frames", type=int, default=4, help="last frames of each run to add")
    ap.add_argument("--atoms-per-molecule", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model.pt"
    if not model.exists():
        data = harvested_dataset(args.dataset, args.runs, args.frames, args.atoms_per_molecule)
        data.save(out / "dataset.npz")
        overrides = {
            "data": {"dataset": str(out / "dataset.npz"), "label_target": args.target},
            "training": {"output_dir": str(out / "train"), "resume": False},
        }
        cfg = load_config(args.config, overrides)
        checkpoint = train(cfg, list(data))
        export_checkpoint(checkpoint, model, config=args.config, check_frames=list(data), log=lambda _: None)
    models = [tuple(c.split("=", 1)) for c in args.compare] + [(f"{args.target} labels + biased frames", str(model))]
    structure_table(models, args.held_out, args.atoms_per_molecule)


if __name__ == "__main__":
    main()
