"""Is the demo's learned CV shaped for biasing? (benchmark, not a test)

Generates the demo's LJ training data (crystal, melt, crystal-melt interfaces in boxes of
two sizes, spontaneous freezing), trains the demo model (``examples/lj/train.toml``:
per-molecule ten Wolde targets), and scores ``n_crystal`` on the held-out trajectory
blocks of the interface and freezing runs: Spearman correlation with the ten Wolde solid
fraction (ours and freud's), per-molecule agreement of the head, calibration, the
reading of perfect fcc and hcp. Reuses what ``make demo`` already made in ``--out``.

    .venv/bin/python benchmarks/cv_shape.py [--out demo_out]

Prints a markdown table and writes ``<out>/cv_shape.png`` and ``<out>/cv_shape.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentcv.cv_models.analysis.cv_quality import interface_report, plot_cv_vs_solid
from latentcv.cv_models.config import load_config
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.app.demo import DemoConfig, prepare_data, train_model
from latentcv.cv_models.checkpoint import load_encoder
from latentcv.cv_models.data.split import split_frames
from latentcv.cv_models.systems import SYSTEMS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_out", help="the demo's output folder (data and training are reused)")
    a = p.parse_args()
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = DemoConfig()
    npz, fingerprint = prepare_data(out, cfg)
    checkpoint = train_model(out, npz, fingerprint)
    config = load_config(SYSTEMS["lj"].template_dir / "train.toml", {"data": {"dataset": str(npz)}})
    frames = list(Dataset.load(npz))
    _, held_out = split_frames(
        frames, config.data.n_blocks, config.data.val_fraction, config.training.seed, config.data.gap
    )
    along_path = [f for f in held_out if "interface" in f.trajectory or "transition" in f.trajectory]
    encoder = load_encoder(checkpoint)
    cutoff = config.data.label_cutoff or config.model.cutoff
    report = interface_report(along_path, encoder, cutoff)
    plot_cv_vs_solid(out / "cv_shape.png", along_path, encoder, cutoff)
    (out / "cv_shape.json").write_text(json.dumps(report.to_dict(), indent=1))
    print(f"Held-out interface and freezing frames of {checkpoint}:\n")
    print(report.markdown())
    print(f"\nPlot: {out / 'cv_shape.png'}")


if __name__ == "__main__":
    main()
