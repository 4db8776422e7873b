"""The end-to-end demo: learn a CV for LJ crystallisation and run metadynamics on it.

1. generate crystal and melt trajectories of the embedded LJ system,
2. train the hierarchical graph autoencoder on them (``examples/lj/train.toml``),
3. export the encoder as a checked deployable model (``latentcv export``),
4. write plumed.dat (``latentcv plumed-input``) and run LAMMPS metadynamics of an
   undercooled melt biased on the learned CV through PLUMED's ``LATENT_CV``
   (:mod:`latentcv.cv_models.app.metad_run`, which also judges crystallinity
   independently: freud's ten Wolde solid fraction),
5. plot.

Every stage reuses its output when its inputs did not change, so a second ``make demo``
only reruns the metadynamics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from latentcv.cv_models.native import paths
from latentcv.cv_models.app import demo_plots
from latentcv.cv_models.app.metad_run import MetadRun, MetadRunConfig, latent_cv_plumed, run_metadynamics
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.systems import METAD_DEFAULTS, SYSTEMS
from latentcv.cv_models.atomic_write import write_atomically

if TYPE_CHECKING:  # imported where used: the generator pulls in LAMMPS
    from latentcv.cv_models.generate import GeneratorConfig

EXAMPLES = SYSTEMS["lj"].template_dir


@dataclass
class DemoConfig:
    """What the demo does (defaults: a few minutes on one core).

    Attributes:
        replicas, prod_steps, dump_every: training data: trajectories per phase, sampled
            steps each and the dump stride (108-atom boxes, generator preset ``tiny``).
        interface_cells: box widths (fcc cells) of the crystal-melt interface runs (boxes
            of n x n x 2n cells; empty: none); interface_steps: sampled steps of each.
        transition_replicas, transition_steps: spontaneous freezing of a 256-atom melt at
            T = 0.45 (frames with nuclei and defective, mixed-stacking crystal).
        md_cells: fcc cells per box edge of the metadynamics run (4·cells³ atoms).
        md_steps: metadynamics steps; melt_steps/equil_steps: preparation of the melt;
            dump_every_md: frames kept for the analysis.
        cv: the model output biased (default ``n_crystal``, the learned count of
            crystalline molecules); pace, height (ε; None = ``METAD_DEFAULTS.height_kt`` kT), biasfactor: METAD.
        seed: LAMMPS velocity seed of the metadynamics run.
        control: also run the same melt without bias (does it crystallise by itself?).
        epochs: override the training epochs of ``examples/lj/train.toml``.
        crystal_threshold, hold_steps: crystallised = freud ten Wolde solid fraction above
            the threshold for ``hold_steps`` steps.
        stop_when_crystallised: end the biased run once it has crystallised (a user waits
            for the crystal, not for the budget).
        progress: progress bars.
    """

    replicas: int = 3
    prod_steps: int = 4000
    dump_every: int = 100
    interface_cells: tuple[int, ...] = (3, 4)
    interface_steps: int = 3000
    transition_replicas: int = 2
    transition_steps: int = 30000
    md_cells: int = 4
    md_steps: int = 30000
    melt_steps: int = 2000
    equil_steps: int = 1000
    dump_every_md: int = 500
    cv: str = "n_crystal"
    pace: int = METAD_DEFAULTS.pace
    height: float | None = None
    biasfactor: float = METAD_DEFAULTS.biasfactor
    seed: int = 2024
    control: bool = True
    epochs: int | None = None
    crystal_threshold: float = 0.8
    hold_steps: int = 5000
    stop_when_crystallised: bool = True
    progress: bool = True


def _stage(msg: str) -> None:
    print(f"[latentcv demo] {msg}", flush=True)


def training_data_configs(cfg: DemoConfig) -> dict[str, "GeneratorConfig"]:
    """The generator runs of the demo's training data, by output subfolder: crystal and
    melt (108 atoms), crystal-melt interfaces (``interface_cells``), spontaneous freezing."""
    from latentcv.cv_models.generate import GeneratorConfig

    gens = {
        "phases": GeneratorConfig.preset(
            "tiny",
            "lj",
            phases=("crystal", "melt"),
            replicas=cfg.replicas,
            prod_steps=cfg.prod_steps,
            dump_every=cfg.dump_every,
        )
    }
    for n in cfg.interface_cells:
        gens[f"interface{n}"] = GeneratorConfig(
            system="lj",
            n_cells=n,
            phases=("interface",),
            replicas=1,
            seed=10 * n + 1,
            interface_steps=cfg.interface_steps,
            interface_every=max(cfg.interface_steps // 30, 1),
            chunk_steps=0,
        )
    if cfg.transition_replicas:
        gens["transition"] = GeneratorConfig(
            system="lj",
            n_cells=4,
            phases=("transition",),
            replicas=cfg.transition_replicas,
            seed=301,
            melt_steps=2000,
            quench_steps=1000,
            transition_steps=cfg.transition_steps,
            dump_every=max(cfg.transition_steps // 60, 1),
            chunk_steps=0,
        )
    return gens


def prepare_data(out: Path, cfg: DemoConfig) -> tuple[Path, str]:
    """Training frames of the LJ system (:func:`training_data_configs`) →
    ``out/data/lj.npz`` and its fingerprint."""
    from latentcv.cv_models.data.dataset import Dataset
    from latentcv.cv_models.generate import generate
    from latentcv.export.provenance import data_fingerprint

    gens = training_data_configs(cfg)
    npz = out / "data" / "lj.npz"
    steps = sum(g.total_steps() for g in gens.values())
    _stage(
        f"1/5 training data: {steps} LAMMPS steps: crystal, melt, crystal-melt interfaces, spontaneous "
        f"freezing (reused when unchanged)"
    )
    dataset = Dataset()
    for name, gen in gens.items():
        dataset.extend(generate(gen, out / "data" / name, reuse=True))
    fingerprint = data_fingerprint(dataset.frames)
    stamp = out / "data" / "lj.npz.fingerprint"
    if not (npz.exists() and stamp.exists() and stamp.read_text() == fingerprint):
        dataset.save(npz)
        stamp.write_text(fingerprint)
    return npz, fingerprint


def train_model(out: Path, dataset: Path, fingerprint: str, epochs: int | None = None) -> Path:
    """Train on ``dataset`` with ``examples/lj/train.toml``; reuse a finished run of the same config."""
    from latentcv.cv_models.checkpoint import CHECKPOINT_VERSION
    from latentcv.cv_models.config import load_config
    from latentcv.cv_models.training import train_from_config

    config = EXAMPLES / "train.toml"
    overrides = {"data": {"dataset": str(dataset)}, "training": {"output_dir": str(out / "train")}}
    if epochs is not None:
        overrides["training"]["epochs"] = epochs
    stamp = out / "train" / "demo-config.json"
    key = json.dumps(
        {
            "config": asdict(load_config(config, overrides)),
            "data": fingerprint,
            "checkpoint_version": CHECKPOINT_VERSION,
        },
        default=str,
    )
    checkpoint = out / "train" / "checkpoint.pt"
    if checkpoint.exists() and stamp.exists() and stamp.read_text() == key:
        _stage(f"2/5 training: reusing {checkpoint}")
        return checkpoint
    _stage(f"2/5 training the hierarchical autoencoder ({config})")
    overrides["training"]["resume"] = False  # the config or the data changed: start afresh
    checkpoint = train_from_config(str(config), overrides)
    stamp.write_text(key)
    return checkpoint


def export_model(out: Path, checkpoint: Path) -> Path:
    """``latentcv export``: checked TorchScript model file, rewritten when the checkpoint is newer."""
    from latentcv.export.from_checkpoint import export_checkpoint

    model = out / "model.pt"
    if model.exists() and model.stat().st_mtime > checkpoint.stat().st_mtime:
        _stage(f"3/5 export: reusing {model}")
        return model
    _stage("3/5 export with self-checks (Python eager = TorchScript = C++ core, gradients = finite differences)")
    return export_checkpoint(checkpoint, model, log=lambda line: print("    " + line), species_masses=[1.0])


def metad_config(
    out: Path, model: Path, cfg: DemoConfig, biased: bool = True, folder: Path | None = None
) -> MetadRunConfig:
    """The demo's metadynamics run (:func:`~latentcv.cv_models.app.metad_run.run_metadynamics`):
    ``examples/lj/metad.lmp`` biased on the model's ``cv.<cfg.cv>`` through LATENT_CV in
    ``out/metad`` (or, biased=False, the same run without bias in ``out/control``; or in
    ``folder``), stopping once crystallised when ``cfg.stop_when_crystallised``."""
    md = folder or out / ("metad" if biased else "control")
    plumed = (
        latent_cv_plumed(
            model, md, 4 * cfg.md_cells**3, cfg.cv, height=cfg.height, pace=cfg.pace, biasfactor=cfg.biasfactor
        )
        if biased
        else None
    )
    return MetadRunConfig(
        folder=md,
        plumed=plumed,
        system="lj",
        cells=cfg.md_cells,
        steps=cfg.md_steps,
        seed=cfg.seed,
        melt_steps=cfg.melt_steps,
        equil_steps=cfg.equil_steps,
        dump_every=cfg.dump_every_md,
        crystal_threshold=cfg.crystal_threshold,
        hold_steps=cfg.hold_steps,
        stop_when_crystallised=biased and cfg.stop_when_crystallised,
        progress=cfg.progress,
        label="latentcv demo MD",
    )


def _metadynamics(out: Path, model: Path, cfg: DemoConfig, biased: bool) -> MetadRun:
    """Stage 4: the biased run (or the unbiased control), announced."""
    run = metad_config(out, model, cfg, biased)
    what = f"biased on cv.{cfg.cv}" if biased else "without bias (control)"
    _stage(
        f"4/5 {'metadynamics' if biased else 'control'}: {run.n_atoms} LJ atoms, {cfg.md_steps} steps {what} "
        f"({run.folder})"
    )
    return run_metadynamics(run)


def ten_wolde_fractions(dump: Path, cutoff: float = 1.5) -> np.ndarray:
    """latentcv's own ten Wolde solid fraction of every frame of a LAMMPS dump (drawn beside
    the judge's, freud's)."""
    from latentcv.cv_models.analysis.tenwolde import TenWoldeConfig, ten_wolde_frame
    from latentcv.cv_models.data import read_lammps_dump

    return np.array(
        [ten_wolde_frame(f, TenWoldeConfig(cutoff=cutoff)).solid_fraction for f in read_lammps_dump(dump, units="lj")]
    )


def free_energy_profile(md: Path, cv: str) -> np.ndarray | None:
    """F(s) [G, 2] in the run's energy unit from PLUMED's ``sum_hills`` on ``md/HILLS``
    (well-tempered: the bias scaled by γ/(γ−1)); None if PLUMED could not make it."""
    import subprocess
    import sys

    fes = md / "fes.dat"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "latentcv.cv_models.app.cli",
            "plumed",
            "sum_hills",
            "--hills",
            str(md / "HILLS"),
            "--outfile",
            str(fes),
            "--mintozero",
        ],
        capture_output=True,
        text=True,
        cwd=md,
    )
    if proc.returncode != 0 or not fes.exists():
        return None
    return read_plumed_table(fes).data[:, :2]


def analyse(out: Path, cfg: DemoConfig, biased: MetadRun, control: MetadRun | None) -> dict:
    """The report of the runs: solid fraction along the biased and the control run (the
    runs' judge, freud, independent of the CV; latentcv's own ten Wolde beside it), when
    it first crystallised, the CV and the bias against time, the free-energy profile from
    the bias, the latent map of the training frames; ``out/demo.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    md = biased.folder
    _stage(
        "5/5 analysis: solid fraction of the dumped frames (freud ten Wolde, independent of the CV), "
        "free-energy profile (PLUMED sum_hills)"
    )
    colvar = read_plumed_table(md / "COLVAR")
    hills = read_plumed_table(md / "HILLS")
    solid = {
        "steps": np.array(biased.steps),
        "freud": np.array(biased.fraction),
        "ten_wolde": ten_wolde_fractions(biased.dump),
    }
    cv = colvar.column(f"cv.{cfg.cv}")
    bias = colvar.column("metad.bias")
    step_col = colvar.data[:, 0] / SYSTEMS["lj"].dt  # COLVAR time (LJ time units) -> MD step
    fes = free_energy_profile(md, cfg.cv)

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    demo_plots.cv_and_bias(axes[0, 0], step_col, cv, bias, cfg.cv)
    demo_plots.solid_fraction(axes[0, 1], solid, control, biased.crystallised_at, cfg.crystal_threshold)
    demo_plots.free_energy(axes[1, 0], fes, cfg.cv)
    demo_plots.latent_map(axes[1, 1], out)
    fig.suptitle("latentcv demo: metadynamics of an undercooled LJ melt on the learned CV")
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=110)
    plt.close(fig)
    return {
        "hills": len(hills.data),
        "cv_min": float(cv.min()),
        "cv_max": float(cv.max()),
        "final_bias": float(bias[-1]),
        "max_solid_fraction": biased.max_fraction,
        "final_solid_fraction": biased.fraction[-1],
        "crystallised_at_step": biased.crystallised_at,
        "control_max_solid_fraction": None if control is None else control.max_fraction,
        "control_crystallised_at_step": None if control is None else control.crystallised_at,
    }


def run_demo(out: str | Path = "demo_out", steps: int | None = None, config: DemoConfig | None = None) -> dict:
    """Run the whole demo into ``out``; prints a one-line summary and returns it as a dict."""
    cfg = config or DemoConfig()
    if steps is not None:
        cfg.md_steps = steps
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    paths.plumed_plugin_path()  # fail early, with the fix, if the build is missing
    dataset, fingerprint = prepare_data(out, cfg)
    checkpoint = train_model(out, dataset, fingerprint, cfg.epochs)
    model = export_model(out, checkpoint)
    biased = _metadynamics(out, model, cfg, biased=True)
    control = _metadynamics(out, model, cfg, biased=False) if cfg.control else None
    steps, seconds = biased.steps_run, biased.seconds
    summary = {
        "atoms": 4 * cfg.md_cells**3,
        "steps": steps,
        "budget": cfg.md_steps,
        "seconds": seconds,
        "ms_per_step": biased.ms_per_step,
        "control_ms_per_step": None if control is None else control.ms_per_step,
        **analyse(out, cfg, biased, control),
    }
    write_atomically(out / "summary.json", json.dumps(summary, indent=1).encode(), "demo summary")
    rule = f"solid fraction > {cfg.crystal_threshold:g} held {cfg.hold_steps} steps, freud ten Wolde"
    if summary["crystallised_at_step"] is not None:
        crystallised = f"CRYSTALLISED at step {summary['crystallised_at_step']} ({rule})"
    else:
        crystallised = f"NOT crystallised within {cfg.md_steps} steps ({rule}; max {summary['max_solid_fraction']:.2f})"
    if summary["crystallised_at_step"] is not None:
        wait = 1e-3 * summary["ms_per_step"] * summary["crystallised_at_step"]
        crystallised += f", after {wait:.0f} s of metadynamics"
    if summary["control_max_solid_fraction"] is not None:
        crystallised += f"; unbiased control: solid fraction up to {summary['control_max_solid_fraction']:.2f}"
    print(
        f"latentcv demo: {summary['atoms']} LJ atoms, {steps} metadynamics steps on the learned cv.{cfg.cv} "
        f"in {seconds:.0f} s ({summary['ms_per_step']:.2f} ms/step); {summary['hills']} hills, "
        f"cv.{cfg.cv} {summary['cv_min']:.2f}→{summary['cv_max']:.2f}, bias {summary['final_bias']:.1f} ε; "
        f"{crystallised}. Report {out / 'demo.png'}"
    )
    return summary
