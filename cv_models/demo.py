"""The end-to-end demo: learn a CV for LJ crystallisation and run metadynamics on it.

1. generate crystal and melt trajectories of the embedded LJ system (DESIGN §6),
2. train the hierarchical graph autoencoder on them (``examples/lj/train.toml``),
3. export the encoder as a checked deployable model (``latentcv export``),
4. write plumed.dat (``latentcv plumed-input``) and run LAMMPS metadynamics of an
   undercooled melt biased on the learned CV through PLUMED's ``LATENT_CV``,
5. check crystallinity independently (ten Wolde solid fraction) and plot.

Every stage reuses its output when its inputs did not change, so a second ``make demo``
only reruns the metadynamics.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cv_models import paths

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "lj"

LAMMPS_INPUT = """\
# latentcv demo: undercooled Lennard-Jones melt (T=0.58, P=1; DESIGN §6) biased on the learned CV
units           lj
atom_style      atomic
lattice         fcc 0.85
region          box block 0 {cells} 0 {cells} 0 {cells}
create_box      1 box
create_atoms    1 box
mass            1 1.0
pair_style      lj/cut 2.5
pair_modify     shift yes
pair_coeff      1 1 1.0 1.0
neighbor        0.3 bin
timestep        0.005
velocity        all create 2.0 {seed} mom yes rot yes dist gaussian
# melt the lattice at T=2, then bring the liquid to the undercooled state point
fix             melt all nvt temp 2.0 2.0 0.5
run             {melt_steps}
unfix           melt
fix             md all npt temp 0.58 0.58 0.5 iso 1.0 1.0 5.0
run             {equil_steps}
# metadynamics through latentcv's fix plumed plugin (defined before the barostat, so
# that the barostat's pressure includes the bias virial from the first step)
unfix           md
fix             bias all plumed plumedfile {plumed_dat} outfile {plumed_log}
fix_modify      bias energy yes
fix             md all npt temp 0.58 0.58 0.5 iso 1.0 1.0 5.0
thermo_style    custom step temp press pe f_bias
thermo          {thermo}
dump            frames all custom {dump_every} {dump} id type x y z
"""


@dataclass
class DemoConfig:
    """What the demo does (defaults: a few minutes on one core).

    Attributes:
        replicas, prod_steps, dump_every: training data: trajectories per phase, sampled
            steps each and the dump stride (108-atom boxes, generator preset ``tiny``).
        md_cells: fcc cells per box edge of the metadynamics run (4·cells³ atoms).
        md_steps: metadynamics steps; melt_steps/equil_steps: preparation of the melt.
        cv: the model output biased; pace, height (ε; None = 1 kT), biasfactor: METAD.
        seed: LAMMPS velocity seed of the metadynamics run.
        control: also run the same melt without bias (does it crystallise by itself?).
        epochs: override the training epochs of ``examples/lj/train.toml``.
    """

    replicas: int = 3
    prod_steps: int = 4000
    dump_every: int = 100
    md_cells: int = 4
    md_steps: int = 20000
    melt_steps: int = 2000
    equil_steps: int = 1000
    cv: str = "proj"
    pace: int = 200
    height: float | None = None
    biasfactor: float = 30.0
    seed: int = 2024
    control: bool = True
    epochs: int | None = None


def _stage(msg: str) -> None:
    print(f"[latentcv demo] {msg}", flush=True)


def prepare_data(out: Path, cfg: DemoConfig) -> tuple[Path, str]:
    """Crystal and melt trajectories of the LJ system → ``out/data/lj.npz`` and its fingerprint."""
    from cv_models.generate import GeneratorConfig, generate
    from export.from_checkpoint import data_fingerprint

    gen = GeneratorConfig.preset("tiny", "lj", phases=("crystal", "melt"), replicas=cfg.replicas,
                                 prod_steps=cfg.prod_steps, dump_every=cfg.dump_every)
    npz = out / "data" / "lj.npz"
    _stage(f"1/5 training data: {gen.total_steps()} LAMMPS steps in 108-atom boxes (reused when unchanged)")
    dataset = generate(gen, out / "data", reuse=True)
    fingerprint = data_fingerprint(dataset.frames)
    stamp = out / "data" / "lj.npz.fingerprint"
    if not (npz.exists() and stamp.exists() and stamp.read_text() == fingerprint):
        dataset.save(npz)
        stamp.write_text(fingerprint)
    return npz, fingerprint


def train_model(out: Path, dataset: Path, fingerprint: str, epochs: int | None = None) -> Path:
    """Train on ``dataset`` with ``examples/lj/train.toml``; reuse a finished run of the same config."""
    from cv_models.config import load_config
    from cv_models.training import train_from_config

    config = EXAMPLES / "train.toml"
    overrides = {"data": {"dataset": str(dataset)}, "training": {"output_dir": str(out / "train")}}
    if epochs is not None:
        overrides["training"]["epochs"] = epochs
    stamp = out / "train" / "demo-config.json"
    key = json.dumps({"config": asdict(load_config(config, overrides)), "data": fingerprint}, default=str)
    checkpoint = out / "train" / "checkpoint.pt"
    if checkpoint.exists() and stamp.exists() and stamp.read_text() == key:
        _stage(f"2/5 training: reusing {checkpoint}")
        return checkpoint
    _stage(f"2/5 training the hierarchical autoencoder ({config})")
    checkpoint = train_from_config(str(config), overrides)
    stamp.write_text(key)
    return checkpoint


def export_model(out: Path, checkpoint: Path) -> Path:
    """``latentcv export``: checked TorchScript model file, rewritten when the checkpoint is newer."""
    from export.from_checkpoint import export_checkpoint

    model = out / "model.pt"
    if model.exists() and model.stat().st_mtime > checkpoint.stat().st_mtime:
        _stage(f"3/5 export: reusing {model}")
        return model
    _stage("3/5 export with self-checks (Python eager = TorchScript = C++ core, gradients = finite differences)")
    return export_checkpoint(checkpoint, model, log=lambda line: print("    " + line), species_masses=[1.0])


def run_metadynamics(out: Path, model: Path, cfg: DemoConfig, biased: bool = True) -> float:
    """LAMMPS + fix plumed + LATENT_CV (or, biased=False, the same run without bias in
    ``out/control``); returns the wall time of the production run (s)."""
    from cv_models.engines import open_lammps
    from export.plumed_input import PlumedInputOptions, write_plumed_input

    natoms = 4 * cfg.md_cells**3
    md = out / ("metad" if biased else "control")
    md.mkdir(parents=True, exist_ok=True)
    for old in ("HILLS", "COLVAR", "traj.dump"):
        (md / old).unlink(missing_ok=True)
    plumed_dat = md / "plumed.dat"
    if biased:
        write_plumed_input(
            model, plumed_dat,
            PlumedInputOptions(atoms=f"1-{natoms}", cv=cfg.cv, temp=0.58, height=cfg.height, pace=cfg.pace,
                               biasfactor=cfg.biasfactor, stride=100, hills=str(md / "HILLS"),
                               colvar=str(md / "COLVAR")),
        )
    lammps_in = md / "in.lammps"  # everything but the final `run` (timed separately)
    text = LAMMPS_INPUT
    if not biased:
        text = "\n".join(l for l in text.splitlines() if not l.startswith(("fix             bias", "fix_modify")))
        text += "\n"
        text = text.replace(" f_bias", "")
    lammps_in.write_text(text.format(
        cells=cfg.md_cells, seed=cfg.seed, melt_steps=cfg.melt_steps, equil_steps=cfg.equil_steps,
        steps=cfg.md_steps, thermo=max(cfg.md_steps // 20, 1), dump_every=max(cfg.md_steps // 40, 1),
        dump=md / "traj.dump", plumed_dat=plumed_dat, plumed_log=md / "plumed.log",
    ))
    if biased:
        _stage(f"4/5 metadynamics: {natoms} LJ atoms, {cfg.md_steps} steps biased on cv.{cfg.cv} ({md})")
    else:
        _stage(f"4/5 control: the same {cfg.md_steps} steps without bias ({md})")
    lmp = open_lammps(["-log", str(md / "log.lammps")], load_fix_plumed=biased)
    try:
        lmp.file(str(lammps_in))
        start = time.perf_counter()
        lmp.command(f"run {cfg.md_steps}")
        return time.perf_counter() - start
    finally:
        lmp.close()


def analyse(out: Path, cfg: DemoConfig) -> dict:
    """Ten Wolde solid fraction along the run, the CV and the bias; ``out/demo.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cv_models.analysis.tenwolde import TenWoldeConfig, ten_wolde_frame
    from cv_models.data import read_lammps_dump

    md = out / "metad"
    _stage("5/5 analysis: ten Wolde solid fraction of the dumped frames (independent of the CV)")
    lines = (md / "COLVAR").read_text().splitlines()
    fields = lines[0].split()[2:]
    colvar = np.array([[float(x) for x in l.split()] for l in lines if l and not l.startswith("#")])
    def solid_fraction(dump: Path) -> tuple[np.ndarray, np.ndarray]:
        frames = read_lammps_dump(dump, units="lj")
        steps = np.array([f.timestep for f in frames], dtype=float)
        return steps, np.array([ten_wolde_frame(f, TenWoldeConfig(cutoff=1.5)).solid_fraction for f in frames])

    steps, solid = solid_fraction(md / "traj.dump")
    control = out / "control" / "traj.dump"
    control_steps, control_solid = solid_fraction(control) if cfg.control and control.exists() else (None, None)
    hills = np.loadtxt(md / "HILLS", comments="#", ndmin=2)
    cv = colvar[:, fields.index(f"cv.{cfg.cv}")]
    bias = colvar[:, fields.index("metad.bias")]
    time_col = colvar[:, 0]

    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    axes[0].plot(time_col, cv, lw=0.8)
    axes[0].set_ylabel(f"cv.{cfg.cv}")
    axes[1].plot(time_col, bias, lw=0.8, color="C1")
    axes[1].set_ylabel("bias (ε)")
    dt = 0.005
    axes[2].plot((steps - steps[0]) * dt + time_col[0], solid, "o-", ms=3, color="C2", label="biased on the CV")
    if control_solid is not None:
        axes[2].plot((control_steps - control_steps[0]) * dt + time_col[0], control_solid, "s--", ms=3,
                     color="0.5", label="unbiased control")
        axes[2].legend(loc="upper left", fontsize=8)
    axes[2].set_ylabel("solid fraction\n(ten Wolde)")
    axes[2].set_xlabel("time (τ)")
    axes[2].set_ylim(-0.02, 1.02)
    fig.suptitle("latentcv demo: metadynamics of an undercooled LJ melt on the learned CV")
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=120)
    plt.close(fig)
    return {"hills": int(hills.shape[0]), "cv_min": float(cv.min()), "cv_max": float(cv.max()),
            "final_bias": float(bias[-1]), "max_solid_fraction": float(solid.max()),
            "final_solid_fraction": float(solid[-1]),
            "control_max_solid_fraction": None if control_solid is None else float(control_solid.max())}


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
    seconds = run_metadynamics(out, model, cfg)
    control_seconds = run_metadynamics(out, model, cfg, biased=False) if cfg.control else None
    summary = {"atoms": 4 * cfg.md_cells**3, "steps": cfg.md_steps, "seconds": seconds,
               "ms_per_step": 1e3 * seconds / max(cfg.md_steps, 1),
               "control_ms_per_step": None if control_seconds is None else 1e3 * control_seconds / max(cfg.md_steps, 1),
               **analyse(out, cfg)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    crystallised = "crystallised" if summary["max_solid_fraction"] > 0.5 else "not crystallised (run longer)"
    if summary["control_max_solid_fraction"] is not None:
        crystallised += f" (unbiased control: up to {summary['control_max_solid_fraction']:.2f})"
    print(
        f"latentcv demo: {summary['atoms']} LJ atoms, {cfg.md_steps} metadynamics steps on the learned cv.{cfg.cv} "
        f"in {seconds:.0f} s ({summary['ms_per_step']:.2f} ms/step); {summary['hills']} hills, "
        f"cv.{cfg.cv} {summary['cv_min']:.2f}→{summary['cv_max']:.2f}, bias {summary['final_bias']:.1f} ε; "
        f"ten Wolde solid fraction up to {summary['max_solid_fraction']:.2f}: {crystallised}. "
        f"Plot {out / 'demo.png'}"
    )
    return summary
