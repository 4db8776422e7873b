"""A learned CV for the orientationally ordered trimer crystal (benchmark, not a test).

Generates trimer training data (crystal, melt, crystal-melt interfaces at the state
point and near T_m), trains with per-molecule local-P2 targets
(``examples/trimers/train.toml``: ten Wolde on centres reads 0 % in this crystal), exports
the model, and scores ``n_crystal`` on the held-out interface frames against the share of
molecules with local P2 > 0.5 (and reports freud's ten Wolde on centres, which fails).

    .venv/bin/python benchmarks/trimers_cv.py [--out trimers_out] [--temp T]

Writes ``<out>/model.pt`` (the input of ``latentcv compare --system trimers``), prints
the table, and plots ``<out>/cv_shape.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cv_models.analysis.cv_quality import interface_report, plot_cv_vs_solid
from cv_models.config import load_config
from cv_models.data.dataset import Dataset
from cv_models.generate import SYSTEMS, GeneratorConfig, generate
from cv_models.training import load_encoder, split_frames, train
from export.from_checkpoint import export_checkpoint

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "trimers" / "train.toml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="trimers_out")
    p.add_argument("--temp", type=float, default=SYSTEMS["trimers"].temperature, help="state point (default: the system's)")
    p.add_argument("--cells", type=int, default=3)
    a = p.parse_args()
    out = Path(a.out).resolve()
    t, tm = a.temp, 1.35  # the state point, and just below T_m = 1.375 (docs/data.md)
    gens = {"phases": GeneratorConfig.preset("tiny", "trimers", n_cells=a.cells, replicas=2, temperature=t,
                                             prod_steps=3000, dump_every=100, melt_steps=3000, quench_steps=2000,
                                             equil_steps=1000),
            "interface": GeneratorConfig(system="trimers", n_cells=a.cells, phases=("interface",), replicas=1,
                                         interface_steps=3000, interface_every=100, chunk_steps=0,
                                         interface_seeds=(("slab", 0.25, t), ("slab", 0.45, t), ("slab", 0.65, t),
                                                          ("slab", 0.85, t), ("slab", 0.35, tm), ("slab", 0.6, tm)))}
    ds = Dataset()
    for name, g in gens.items():
        ds.extend(generate(g, out / "data" / name, reuse=True))
    ds.save(out / "trimers.npz")
    cfg = load_config(CONFIG, {"data": {"dataset": str(out / "trimers.npz")},
                               "training": {"output_dir": str(out / "train"), "resume": False}})
    frames = list(ds)
    checkpoint = train(cfg, frames)
    export_checkpoint(checkpoint, out / "model.pt", config=str(CONFIG), check_frames=frames, log=lambda _: None)
    _, held = split_frames(frames, cfg.data.n_blocks, cfg.data.val_fraction, cfg.training.seed, cfg.data.gap)
    held = [f for f in held if "interface" in f.trajectory or "crystal" in f.trajectory or "melt" in f.trajectory]
    enc = load_encoder(checkpoint)
    report = interface_report(held, enc, cfg.data.label_cutoff, criterion="local_p2")
    plot_cv_vs_solid(out / "cv_shape.png", held, enc, cfg.data.label_cutoff, criterion="local_p2")
    print(f"trimers at T = {t}: held-out frames, reference = share of molecules with local P2 > 0.5\n")
    print(report.markdown())
    print(f"\nmodel: {out / 'model.pt'}")


if __name__ == "__main__":
    main()
