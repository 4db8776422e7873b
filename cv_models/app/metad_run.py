"""One metadynamics run of an embedded system's undercooled melt: set up, run, judge.

``latentcv demo``, ``compare``, ``refine`` and the benchmarks run their LAMMPS
metadynamics (and the unbiased controls) through :func:`run_metadynamics`: it writes
``plumed.dat`` into the run's folder, runs ``examples/<system>/metad.lmp`` in this process
(melt, equilibrate, then ``steps`` steps under ``fix plumed``) with a progress bar, judges
crystallinity independently of every CV (freud's ten Wolde solid fraction, the share of
molecules with local P2 > 0.5 where ten Wolde on centres fails: the trimers, or the CHILL+
ice fraction for mW water) and, when
asked, stops once the run has crystallised. It returns a :class:`MetadRun`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from latentcv.cv_models.systems import METAD_DEFAULTS, SYSTEMS

__all__ = ["MetadRunConfig", "MetadRun", "run_metadynamics", "latent_cv_plumed", "crystal_fraction", "judge_name"]

RUN_OUTPUTS = ("HILLS", "COLVAR", "traj.dump", "fes.dat")  # a previous run's, removed first


@dataclass
class MetadRunConfig:
    """One metadynamics run.

    Attributes:
        folder: the run's folder: plumed.dat, HILLS, COLVAR, traj.dump, log.lammps, plumed.log.
        plumed: the text of plumed.dat (its HILLS and COLVAR in ``folder``); None: the
            same MD without PLUMED (an unbiased control).
        system: embedded system (``SYSTEMS``): runs ``examples/<system>/metad.lmp``.
        cells: lattice cells per box edge.
        steps: metadynamics steps after the melt is prepared.
        seed: LAMMPS velocity seed.
        temp: state point; None: the input file's.
        melt_steps, equil_steps: preparation of the melt; None: the input file's.
        dump_every: dump stride (the frames judged).
        kernel: PLUMED kernel library ("" = the bundled one).
        judge: judge crystallinity of the dumped frames.
        judge_cutoff: neighbour cutoff of the judge; 0 = the system's ten Wolde cutoff.
        crystal_threshold, hold_steps: crystallised = the judged fraction above the
            threshold at every frame for ``hold_steps`` steps.
        stop_when_crystallised: end the run once it has crystallised.
        check_every: steps between judgements while it runs; 0 = ``hold_steps // 2``.
        chunk_steps: LAMMPS ``run`` pieces (progress bar, checks); 0 = steps / 50, at least 100.
        progress, label: the progress bar and its text.
    """

    folder: Path
    plumed: str | None = None
    system: str = "lj"
    cells: int = 4
    steps: int = 30000
    seed: int = 2024
    temp: float | None = None
    melt_steps: int | None = None
    equil_steps: int | None = None
    dump_every: int = 500
    kernel: str = ""
    judge: bool = True
    judge_cutoff: float = 0.0
    crystal_threshold: float = 0.8
    hold_steps: int = 5000
    stop_when_crystallised: bool = False
    check_every: int = 0
    chunk_steps: int = 0
    progress: bool = True
    label: str = "latentcv MD"

    @property
    def input_file(self) -> Path:
        return SYSTEMS[self.system].template_dir / "metad.lmp"

    @property
    def n_atoms(self) -> int:
        spec = SYSTEMS[self.system]
        return spec.n_molecules(self.cells) * spec.atoms_per_molecule

    def validate(self) -> "MetadRunConfig":
        """Checks, naming the setting to fix; returns self."""
        if self.system not in SYSTEMS:
            raise ValueError(f"unknown system {self.system!r}: one of {', '.join(SYSTEMS)}")
        if not self.input_file.exists():
            raise ValueError(f"system {self.system!r} has no metadynamics input {self.input_file}")
        for name in ("cells", "dump_every", "hold_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"metadynamics run: {name} = {getattr(self, name)} must be >= 1")
        for name in ("steps", "check_every", "chunk_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"metadynamics run: {name} = {getattr(self, name)} must be >= 0")
        return self


@dataclass
class MetadRun:
    """What one run did.

    Attributes:
        folder: its folder (``plumed.dat``, ``HILLS``, ``COLVAR``, ``traj.dump``, logs).
        biased: run with PLUMED (``plumed`` given).
        steps_run: metadynamics steps done (fewer than asked when it stopped crystallised).
        seconds: wall time of those steps (the MD; the judging in between not counted).
        crystallised_at: first step of the held crystal (None: not within the run, or not judged).
        steps, fraction: the judged frames: their steps and crystalline fractions.
    """

    folder: Path
    biased: bool
    steps_run: int
    seconds: float
    crystallised_at: int | None = None
    steps: list[int] = field(default_factory=list)
    fraction: list[float] = field(default_factory=list)

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.seconds / max(self.steps_run, 1)

    @property
    def wall_s_to_crystal(self) -> float | None:
        return None if self.crystallised_at is None else self.crystallised_at * self.ms_per_step / 1e3

    @property
    def max_fraction(self) -> float | None:
        return max(self.fraction) if self.fraction else None

    @property
    def dump(self) -> Path:
        return self.folder / "traj.dump"


def crystal_fraction(frame, system: str, cutoff: float) -> float:
    """Share of crystalline molecules, independent of every CV, by the system's
    ``crystal_criterion``: freud's ten Wolde (atoms or centres), the share with local
    P2 > 0.5 (orientationally ordered molecular crystals: the trimers), or the share of
    cubic + hexagonal ice by CHILL+ on freud's q3 harmonics (mW water)."""
    criterion = SYSTEMS[system].crystal_criterion
    if criterion == "local_p2":
        from latentcv.cv_models.analysis.orientation import orientation_frame

        return float((orientation_frame(frame, cutoff).local_p2 > 0.5).mean())
    if criterion == "chill_plus":
        from latentcv.cv_models.analysis.ice import ice_fraction

        return ice_fraction(frame, cutoff)
    from latentcv.cv_models.analysis.crystallinity import freud_solid_fraction

    return freud_solid_fraction(frame, cutoff)


JUDGE_NAMES = {
    "ten_wolde": "freud ten Wolde solid fraction",
    "local_p2": "share of molecules with local P2 > 0.5",
    "chill_plus": "CHILL+ ice fraction (cubic + hexagonal)",
}


def judge_name(system: str) -> str:
    """The judge of :func:`crystal_fraction` in words."""
    return JUDGE_NAMES[SYSTEMS[system].crystal_criterion]


def latent_cv_plumed(
    model: Path,
    folder: Path,
    n_atoms: int,
    cv: str = "n_crystal",
    temp: float | None = None,
    height: float | None = None,
    pace: int = METAD_DEFAULTS.pace,
    biasfactor: float = METAD_DEFAULTS.biasfactor,
    print_stride: int = 100,
) -> str:
    """plumed.dat text (``latentcv plumed-input``) biasing a latentcv model's output ``cv``
    on atoms 1..n_atoms, HILLS and COLVAR in ``folder``; temp None: the LJ state point."""
    from latentcv.export.plumed_input import PlumedInputOptions, plumed_input

    options = PlumedInputOptions(
        atoms=f"1-{n_atoms}",
        cv=cv,
        temp=SYSTEMS["lj"].temperature if temp is None else temp,
        height=height,
        pace=pace,
        biasfactor=biasfactor,
        stride=print_stride,
        hills=str(folder / "HILLS"),
        colvar=str(folder / "COLVAR"),
    )
    return plumed_input(model, options)


def run_metadynamics(cfg: MetadRunConfig) -> MetadRun:
    """Write plumed.dat, run the system's ``metad.lmp`` in ``cfg.folder`` (a previous
    run's outputs removed first), judge the dumped frames; see :class:`MetadRunConfig`."""
    from tqdm.auto import tqdm

    from latentcv.cv_models.engines import open_lammps
    from latentcv.cv_models.generate import run_input

    cfg.validate()
    folder = Path(cfg.folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in RUN_OUTPUTS:
        (folder / old).unlink(missing_ok=True)
    if cfg.plumed is not None:
        (folder / "plumed.dat").write_text(cfg.plumed)
    judge = _Judge(cfg, folder / "traj.dump")
    lmp = open_lammps(
        ["-log", str(folder / "log.lammps")],
        variables=_variables(cfg, folder),
        load_fix_plumed=cfg.plumed is not None,
        plumed_kernel=cfg.kernel or None,
    )
    try:
        chunk = cfg.chunk_steps or max(cfg.steps // 50, 100)
        with tqdm(total=_total_steps(cfg), unit="step", desc=cfg.label, disable=not cfg.progress) as bar:
            timings = run_input(
                lmp,
                cfg.input_file,
                chunk_steps=chunk,
                progress=bar,
                stop_last_run=judge.stop if cfg.stop_when_crystallised else None,
            )
    finally:
        lmp.close()
    steps_run, seconds = timings[-1]
    first = judge.update()
    return MetadRun(
        folder,
        cfg.plumed is not None,
        steps_run,
        seconds - judge.seconds,
        first,
        list(judge.watch.steps) if judge.watch else [],
        list(judge.watch.values) if judge.watch else [],
    )


class _Judge:
    """Follows the dump while the run writes it (``CrystallisationWatch``); ``stop`` is
    ``run_input``'s ``stop_last_run``, judging every ``check_every`` steps and keeping the
    time it took (not MD time)."""

    def __init__(self, cfg: MetadRunConfig, dump: Path) -> None:
        from latentcv.cv_models.analysis.crystallinity import CrystallisationWatch

        cutoff = cfg.judge_cutoff or SYSTEMS[cfg.system].tenwolde_cutoff
        self.watch = (
            CrystallisationWatch(
                dump,
                lambda f: crystal_fraction(f, cfg.system, cutoff),
                cfg.crystal_threshold,
                cfg.hold_steps,
                units=SYSTEMS[cfg.system].units,
            )
            if cfg.judge
            else None
        )
        self.every = cfg.check_every or cfg.hold_steps // 2
        self.checked = 0
        self.seconds = 0.0

    def update(self) -> int | None:
        """Judge the frames dumped since the last call; the crystallisation step or None."""
        return None if self.watch is None else self.watch.update()

    def stop(self, done: int) -> bool:
        if done - self.checked < self.every:
            return False
        self.checked = done
        began = time.perf_counter()
        first = self.update()
        self.seconds += time.perf_counter() - began
        return first is not None


def _variables(cfg: MetadRunConfig, folder: Path) -> dict:
    """The -var values of ``metad.lmp`` (None settings: the file's own)."""
    v = dict(
        examples=SYSTEMS[cfg.system].template_dir,
        ncells=cfg.cells,
        seed=cfg.seed,
        steps=cfg.steps,
        bias="yes" if cfg.plumed is not None else "no",
        plumedfile=folder / "plumed.dat" if cfg.plumed is not None else "none",
        plumedlog=folder / "plumed.log",
        every=cfg.dump_every,
        dump=folder / "traj.dump",
    )
    optional = {"temp": cfg.temp, "melt": cfg.melt_steps, "equil": cfg.equil_steps}
    v.update({k: value for k, value in optional.items() if value is not None})
    return v


def _total_steps(cfg: MetadRunConfig) -> int:
    """MD steps of the whole input (the progress bar): the preparation runs (the file's
    ``melt``, ``quench``, ``equil`` or the given ones) and ``steps``."""
    text = cfg.input_file.read_text()
    own = {k: int(v) for k, v in re.findall(r"^variable\s+(melt|quench|equil)\s+index\s+(\d+)", text, re.M)}
    given = {"melt": cfg.melt_steps, "equil": cfg.equil_steps}
    return cfg.steps + sum(given[k] if given.get(k) is not None else n for k, n in own.items())
