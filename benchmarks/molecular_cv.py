"""A learned CV for a molecular system: the trimers or the dimers (benchmark, not a test).

Generates training data (crystal, melt, crystal-melt interfaces at the state point and
near T_m), trains with the system's per-molecule targets (``examples/<system>/train.toml``:
the local orientational order P2 for the trimers, where ten Wolde on centres reads 0 % of
their crystal; ten Wolde on the centres for the dimers' plastic crystal), exports the
model, and scores ``n_crystal`` on the held-out frames against that independent criterion.

    .venv/bin/python benchmarks/molecular_cv.py --system trimers [--out trimers_out] [--temp T]
    .venv/bin/python benchmarks/molecular_cv.py --system dimers --out dimers_out
    .venv/bin/python benchmarks/molecular_cv.py --system dimers --out dimers_small \
        --set model.moment_channels=1 --set model.stage2_layers=0     # a variant of train.toml

Writes ``<out>/model.pt`` (the input of ``latentcv compare --system SYSTEM``), prints
the table, and plots ``<out>/cv_shape.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from latentcv.cv_models.analysis.cv_quality import interface_report, plot_cv_vs_solid
from latentcv.cv_models.config import load_config, parse_overrides
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS
from latentcv.cv_models.checkpoint import load_encoder
from latentcv.cv_models.data.split import split_frames
from latentcv.cv_models.training import train
from latentcv.export.from_checkpoint import export_checkpoint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# temperature just below T_m (docs/data.md): interfaces that move slowly
NEAR_MELTING = {"trimers": 1.35, "dimers": 1.5}
REFERENCE = {
    "local_p2": "share of molecules with local P2 > 0.5",
    "ten_wolde": "ten Wolde solid fraction of the centres",
}


def generators(system: str, cells: int, t: float, tm: float) -> dict:
    """The data of the benchmark: the phases at ``t`` and interface slabs at ``t`` and near
    the melting point ``tm``."""
    return {
        "phases": GeneratorConfig.preset(
            "tiny",
            system,
            n_cells=cells,
            replicas=2,
            temperature=t,
            prod_steps=3000,
            dump_every=100,
            melt_steps=3000,
            quench_steps=2000,
            equil_steps=1000,
        ),
        "interface": GeneratorConfig(
            system=system,
            n_cells=cells,
            phases=("interface",),
            replicas=1,
            interface_steps=3000,
            interface_every=100,
            chunk_steps=0,
            interface_seeds=(
                ("slab", 0.25, t),
                ("slab", 0.45, t),
                ("slab", 0.65, t),
                ("slab", 0.85, t),
                ("slab", 0.35, tm),
                ("slab", 0.6, tm),
            ),
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", choices=sorted(NEAR_MELTING), default="trimers")
    p.add_argument("--out", default="", help="output folder (default: <system>_out)")
    p.add_argument("--temp", type=float, default=0.0, help="state point (default: the system's)")
    p.add_argument("--cells", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override train.toml")
    a = p.parse_args()
    spec = SYSTEMS[a.system]
    out = Path(a.out or f"{a.system}_out").resolve()
    config = EXAMPLES / a.system / "train.toml"
    t, tm = a.temp or spec.temperature, NEAR_MELTING[a.system]
    gens = generators(a.system, a.cells, t, tm)
    ds = Dataset()
    for name, g in gens.items():
        ds.extend(generate(g, out / "data" / name, reuse=True))
    ds.save(out / f"{a.system}.npz")
    overrides = parse_overrides(a.set)
    overrides.setdefault("data", {})["dataset"] = str(out / f"{a.system}.npz")
    overrides.setdefault("training", {}).update({"output_dir": str(out / "train"), "resume": False})
    cfg = load_config(config, overrides)
    frames = list(ds)
    checkpoint = train(cfg, frames)
    export_checkpoint(checkpoint, out / "model.pt", config=str(config), check_frames=frames, log=lambda _: None)
    _, held = split_frames(frames, cfg.data.n_blocks, cfg.data.val_fraction, cfg.training.seed, cfg.data.gap)
    held = [f for f in held if "interface" in f.trajectory or "crystal" in f.trajectory or "melt" in f.trajectory]
    enc = load_encoder(checkpoint)
    criterion = spec.crystal_criterion
    report = interface_report(held, enc, cfg.data.label_cutoff, criterion=criterion)
    plot_cv_vs_solid(out / "cv_shape.png", held, enc, cfg.data.label_cutoff, criterion=criterion)
    print(f"{a.system} at T = {t}: held-out frames, reference = {REFERENCE[criterion]}\n")
    print(report.markdown())
    print(f"\nmodel: {out / 'model.pt'}")


if __name__ == "__main__":
    main()
