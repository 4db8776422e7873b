"""``latentcv refine``: biased runs → harvested frames → fine-tuned, re-exported CV, k rounds.

What the CV literature does by hand (train, bias, collect what the bias explores,
retrain), done in one command for an embedded system (``--system``: LJ, dimers, trimers,
mW) or the user's own (``--system-file``, :mod:`~latentcv.cv_models.system_file`). Round r:

1. export the current checkpoint with every self-check (``round<r>/model.pt``);
2. run ``seeds`` well-tempered metadynamics runs of the undercooled melt biased on its
   ``n_crystal`` (``examples/<system>/metad.lmp`` or ``examples/user/metad.lmp``, the demo's
   METAD settings) and harvest their frames;
3. score the current model on those frames it never saw, by the system's own judge
   (Spearman of ``n_crystal`` with the crystalline fraction, per-molecule agreement: ten
   Wolde for atoms, local P2 for the orientationally ordered trimers, CHILL+ for water)
   and note when each run crystallised (the same judge);
4. fine-tune on the training data plus every harvested frame (per-molecule ten Wolde
   targets; ``[training] init_from`` = the current checkpoint) → the next checkpoint.

Writes ``<out>/refine.md`` (a row per round) and ``<out>/refine.json``; the final model is
``<out>/round<k>/model.pt``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from latentcv.cv_models.atomic_write import write_atomically
from latentcv.cv_models.app.metad_run import MetadRunConfig, judge_name, latent_cv_plumed, run_metadynamics
from latentcv.cv_models.system_file import MetadSystem, SystemFile, load_system_file, metad_system


@dataclass
class RefineConfig:
    """What ``latentcv refine`` does.

    Attributes:
        config: the training config of the starting model (its ``[data]`` stays in).
        checkpoint: the starting checkpoint (``latentcv train``).
        rounds: refinement rounds k.
        seeds: biased runs per round (velocity seeds differ per round).
        steps: metadynamics steps per run; harvest_every: dump stride (harvested frames).
        epochs: fine-tuning epochs per round.
        md_cells: lattice cells per edge of the biased melt (embedded systems: the system's
            molecules per cell × cells³; unused with ``system_file``).
        system: embedded system of the biased runs ("lj", "dimers", "trimers", "mw").
        system_file: the user's own system (a system file, docs/tutorial.md); "" = ``system``.
        out: output folder.
    """

    config: str
    checkpoint: str
    rounds: int = 2
    seeds: int = 2
    steps: int = 20000
    harvest_every: int = 500
    epochs: int = 10
    md_cells: int = 4
    system: str = "lj"
    system_file: str = ""
    out: str = "refine_out"

    @property
    def run_system(self) -> str | SystemFile:
        """What the biased runs run: the system file's system, or the embedded ``system``."""
        return load_system_file(self.system_file) if self.system_file else self.system

    @property
    def target(self) -> MetadSystem:
        return metad_system(self.run_system, self.md_cells)

    def validate(self) -> "RefineConfig":
        for what, p in (("config", self.config), ("checkpoint", self.checkpoint)):
            if not Path(p).is_file():
                raise FileNotFoundError(f"{what} {p} not found")
        if self.rounds < 1 or self.seeds < 1 or self.steps < self.harvest_every:
            raise ValueError("need rounds >= 1, seeds >= 1 and steps >= harvest_every")
        self.target  # an unknown system or a bad system file fails here, naming the fix
        return self


def _run_config(cfg: RefineConfig, model: Path, folder: Path, seed: int, cutoff: float) -> MetadRunConfig:
    """One biased run of a round: the system's undercooled melt biased on the model's
    ``n_crystal`` (the demo's METAD settings, at the system's temperature), run to the end
    (every frame harvested), judged by the system's judge with the config's label cutoff."""
    system = cfg.run_system
    target = metad_system(system, cfg.md_cells)
    return MetadRunConfig(
        folder=folder,
        plumed=latent_cv_plumed(model, folder, target.n_atoms, temp=target.temperature),
        system=system,
        cells=cfg.md_cells,
        steps=cfg.steps,
        seed=seed,
        dump_every=cfg.harvest_every,
        judge_cutoff=cutoff,
        label="latentcv refine MD",
    )


def _harvest(dump: Path, name: str, units: str):
    """The frames of a biased run's dump (``units``: its LAMMPS style), unlabeled."""
    from latentcv.cv_models.data import read_lammps_dump
    from latentcv.cv_models.data.frames import UNLABELED

    return read_lammps_dump(dump, units=units, label=UNLABELED, trajectory=name)


def _score(frames, checkpoint: Path, cutoff: float, criterion: str) -> dict:
    """The model's Spearman and per-molecule agreement on ``frames`` against the system's
    judge ``criterion`` (ten_wolde, local_p2 or chill_plus)."""
    from latentcv.cv_models.analysis.cv_quality import interface_report
    from latentcv.cv_models.checkpoint import load_encoder

    report = interface_report(frames, load_encoder(checkpoint), cutoff, criterion)
    s = report.sizes[0]
    return {
        "spearman": s.spearman_ten_wolde,
        "molecule_agreement": s.molecule_agreement,
        "solid_fraction_range": s.solid_fraction_range,
    }


def refine(cfg: RefineConfig, log=print) -> str:
    """Run the rounds; returns the markdown report."""
    from latentcv.cv_models.config import load_config
    from latentcv.cv_models.data.sources import load_frames
    from latentcv.export.from_checkpoint import export_checkpoint

    cfg.validate()
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = load_config(cfg.config)
    if base.data.molecule_labels == "frame":
        raise ValueError(
            f"{cfg.config}: refining needs per-molecule targets for the harvested (unlabeled) frames: "
            'set [data] molecule_labels = "ten_wolde" (or "local_p2" for molecular crystals, "chill_plus" for ice)'
        )
    cutoff = base.data.label_cutoff or base.model.cutoff
    frames = list(load_frames(base))
    checkpoint = Path(cfg.checkpoint).resolve()
    rows = []
    for r in range(1, cfg.rounds + 1):
        checkpoint, row = _refine_round(cfg, r, checkpoint, frames, cutoff, out / f"round{r}", log)
        rows.append(row)
    final = export_checkpoint(
        checkpoint, out / f"round{cfg.rounds}" / "model.pt", config=cfg.config, log=lambda _: None
    )
    report = _markdown(rows, cfg, final)
    write_atomically(out / "refine.md", (report + "\n").encode(), "refine report")
    summary = json.dumps({"config": asdict(cfg), "rounds": rows}, indent=1)
    write_atomically(out / "refine.json", summary.encode(), "refine record")
    return report


def _refine_round(
    cfg: RefineConfig, r: int, checkpoint: Path, frames: list, cutoff: float, rd: Path, log
) -> tuple[Path, dict]:
    """Round ``r`` in folder ``rd``: export ``checkpoint``, run ``cfg.seeds`` metadynamics
    runs with it, harvest their frames into ``frames`` (in place), fine-tune on all of
    them. Returns (the new checkpoint, the round's report row)."""
    from latentcv.cv_models.config import load_config
    from latentcv.cv_models.data.dataset import Dataset
    from latentcv.cv_models.training import train
    from latentcv.export.from_checkpoint import export_checkpoint

    rd.mkdir(exist_ok=True)
    log(f"latentcv refine: round {r}/{cfg.rounds}: export {checkpoint}")
    model = export_checkpoint(checkpoint, rd / "model.pt", config=cfg.config, log=lambda _: None)
    harvested, crystallised = [], []
    for s in range(cfg.seeds):
        seed = 1000 * r + s + 1
        log(f"latentcv refine: round {r}: metadynamics seed {seed} ({cfg.steps} steps)")
        run = run_metadynamics(_run_config(cfg, model, rd / f"metad-seed{seed}", seed, cutoff))
        crystallised.append(run.crystallised_at)
        harvested += _harvest(run.dump, f"refine-round{r}-seed{seed}", cfg.target.units)
    unseen = _score(harvested, checkpoint, cutoff, cfg.target.criterion)
    frames += harvested
    Dataset(frames).save(rd / "data.npz")
    overrides = {
        "data": {"dataset": str(rd / "data.npz"), "trajectories": [], "synthetic": {}},
        "training": {
            "output_dir": str(rd / "train"),
            "epochs": cfg.epochs,
            "init_from": str(checkpoint),
            "resume": False,
        },
    }
    log(f"latentcv refine: round {r}: fine-tune on {len(frames)} frames ({len(harvested)} harvested)")
    new_checkpoint = train(load_config(cfg.config, overrides), frames)
    summary = json.loads((rd / "train" / "summary.json").read_text())
    log(
        f"latentcv refine: round {r}: crystallised at {crystallised}; on the harvested frames the model read "
        f"Spearman {unseen['spearman']:.3f}, per-molecule {100 * unseen['molecule_agreement']:.1f} %"
    )
    row = {
        "round": r,
        "harvested": len(harvested),
        "crystallised_at": crystallised,
        "before_spearman": unseen["spearman"],
        "before_agreement": unseen["molecule_agreement"],
        "harvest_solid_range": unseen["solid_fraction_range"],
        "after_val_molecule_acc": summary.get("val_molecule_acc"),
        "checkpoint": str(new_checkpoint),
    }
    return new_checkpoint, row


def _markdown(rows: list[dict], cfg: RefineConfig, final: Path) -> str:
    target = cfg.target
    lines = [
        f"latentcv refine: {cfg.rounds} round(s), {cfg.seeds} biased run(s) of {cfg.steps} steps each, "
        f"{target.name}: {target.n_molecules} molecules ({target.n_atoms} atoms); fine-tuning {cfg.epochs} "
        f"epochs per round. Final model: {final}",
        "",
        f"Judge: {judge_name(target.criterion)}.",
        "",
        "| round | harvested frames | their crystalline fraction (judge) | model on them (unseen): Spearman "
        "| per-molecule vs the judge | crystallised at (the judge) | after fine-tuning: held-out per-molecule |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cr = ", ".join("never" if c is None else str(c) for c in r["crystallised_at"])
        after = r["after_val_molecule_acc"]
        lo, hi = r["harvest_solid_range"]
        lines.append(
            f"| {r['round']} | {r['harvested']} | {lo:.2f}–{hi:.2f} | {r['before_spearman']:.3f} | "
            f"{100 * r['before_agreement']:.1f} % | {cr} | "
            f"{'–' if after is None else f'{100 * after:.1f} %'} |"
        )
    return "\n".join(lines)
