"""One metadynamics run of a system's undercooled melt: set up, run, judge.

``latentcv demo``, ``compare``, ``refine`` and the benchmarks run their LAMMPS
metadynamics (and the unbiased controls) through :func:`run_metadynamics`: it writes
``plumed.dat`` into the run's folder, runs ``examples/<system>/metad.lmp`` of an embedded
system, or ``examples/user/metad.lmp`` on a user's system file (:class:`MetadSystem`, the one
interface to both), in this process
(melt, equilibrate, then ``steps`` steps under ``fix plumed``) with a progress bar, judges
crystallinity independently of every CV (freud's ten Wolde solid fraction, the share of
molecules with local P2 > 0.5 where ten Wolde on centres fails: the trimers, or the CHILL+
ice fraction for mW water) and, when
asked, stops once the run has crystallised. It returns a :class:`MetadRun`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from latentcv.cv_models.app import resume
from latentcv.cv_models.system_file import MetadSystem, SystemFile, metad_system
from latentcv.cv_models.systems import METAD_DEFAULTS, SYSTEMS

__all__ = [
    "MetadRunConfig",
    "MetadRun",
    "MetadSystem",
    "metad_system",
    "run_metadynamics",
    "latent_cv_plumed",
    "crystal_fraction",
    "judge_name",
]

RUN_OUTPUTS = ("HILLS", "COLVAR", "traj.dump", "fes.dat")  # a previous run's, removed first


@dataclass
class MetadRunConfig:
    """One metadynamics run.

    Attributes:
        folder: the run's folder: plumed.dat, HILLS, COLVAR, traj.dump, log.lammps, plumed.log.
        plumed: the text of plumed.dat (its HILLS and COLVAR in ``folder``); None: the
            same MD without PLUMED (an unbiased control).
        system: embedded system (a key of ``SYSTEMS``): runs ``examples/<system>/metad.lmp``;
            or a user's :class:`~latentcv.cv_models.system_file.SystemFile`: runs
            ``examples/user/metad.lmp`` on its data file.
        cells: lattice cells per box edge (embedded systems; a system file's box is its data file's).
        steps: metadynamics steps after the melt is prepared.
        seed: LAMMPS velocity seed.
        temp: state point (the system's units: K for real/metal); None: the system's.
        melt_steps, equil_steps: preparation of the melt; None: the system's.
        dump_every: dump stride (the frames judged).
        kernel: PLUMED kernel library ("" = the bundled one).
        judge: judge crystallinity of the dumped frames.
        judge_cutoff: neighbour cutoff of the judge (the system's length unit); 0 = the system's.
        crystal_threshold, hold_steps: crystallised = the judged fraction above the
            threshold at every frame for ``hold_steps`` steps.
        stop_when_crystallised: end the run once it has crystallised.
        check_every: steps between judgements while it runs; 0 = ``hold_steps // 2``.
        chunk_steps: LAMMPS ``run`` pieces (progress bar, checks); 0 = steps / 50, at least 100.
        restart_every: a LAMMPS restart file ``rs.<step>`` every this many biased steps,
            and the wall time reached at each check (``sittings.json``); 0 = none.
        resume: continue the run in ``folder`` from its newest restart file when that run
            had the same settings (:mod:`~latentcv.cv_models.app.resume`); else start afresh.
        progress, label: the progress bar and its text.
    """

    folder: Path
    plumed: str | None = None
    system: str | SystemFile = "lj"
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
    restart_every: int = 0
    resume: bool = False
    progress: bool = True
    label: str = "latentcv MD"

    @property
    def target(self) -> "MetadSystem":
        """The system run (:func:`metad_system`)."""
        return metad_system(self.system, self.cells)

    @property
    def input_file(self) -> Path:
        return self.target.input_file

    @property
    def n_atoms(self) -> int:
        return self.target.n_atoms

    def validate(self) -> "MetadRunConfig":
        """Checks, naming the setting to fix; returns self."""
        target = self.target
        if not target.input_file.exists():
            raise ValueError(f"system {target.name!r} has no metadynamics input {target.input_file}")
        for name in ("cells", "dump_every", "hold_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"metadynamics run: {name} = {getattr(self, name)} must be >= 1")
        for name in ("steps", "check_every", "chunk_steps", "restart_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"metadynamics run: {name} = {getattr(self, name)} must be >= 0")
        if self.resume and not self.restart_every:
            raise ValueError("metadynamics run: resume needs restart_every > 0 (restart files to resume from)")
        return self

    def fingerprint(self, budget: int | None = None) -> str:
        """The settings a resumed run must share with the run it continues (not its
        folder, speed or progress bar, nor its budget ``steps``: a longer budget carries a
        run on, a shorter one resumes it before its end; the plumed.dat and the system's
        input files). ``budget``: the fingerprint as runs recorded it before budgets could
        grow, with ``steps`` = ``budget`` in it (:meth:`older_fingerprints`)."""
        import hashlib

        skip = {
            "folder",
            "kernel",
            "progress",
            "label",
            "resume",
            "chunk_steps",
            "check_every",
            "stop_when_crystallised",
            "steps",
        }
        settings = {k: str(v) for k, v in self.__dict__.items() if k not in skip}
        if budget is not None:
            settings["steps"] = str(budget)
        inputs = [self.input_file.read_text(), self.target.commands]
        return hashlib.sha256(repr((sorted(settings.items()), inputs)).encode()).hexdigest()

    def older_fingerprints(self, budgets: Iterable[int]) -> list[str]:
        """The fingerprints runs recorded before the budget left them, for each budget the
        run in the folder may have had (its restart steps: the last is written at its end)."""
        return [self.fingerprint(budget=b) for b in sorted({self.steps, *budgets})]


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


def crystal_fraction(frame, judge: str, cutoff: float) -> float:
    """Share of crystalline molecules, independent of every CV, by ``judge``: a criterion
    of ``JUDGE_NAMES`` or an embedded system's name (its ``crystal_criterion``): freud's
    ten Wolde (atoms or centres), the share with local P2 > 0.5 (orientationally ordered
    molecular crystals: the trimers), or the share of cubic + hexagonal ice by CHILL+ on
    freud's q3 harmonics (mW water). ``cutoff`` in the frame's length unit."""
    criterion = _criterion(judge)
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


def _criterion(judge: str) -> str:
    """The criterion of ``judge``: a key of ``JUDGE_NAMES`` or an embedded system's name."""
    criterion = SYSTEMS[judge].crystal_criterion if judge in SYSTEMS else judge
    if criterion not in JUDGE_NAMES:
        raise ValueError(
            f"unknown judge {judge!r}: one of {', '.join(JUDGE_NAMES)} or a system of {', '.join(SYSTEMS)}"
        )
    return criterion


def judge_name(judge: str) -> str:
    """The judge of :func:`crystal_fraction` in words (``judge``: a criterion or a system's name)."""
    return JUDGE_NAMES[_criterion(judge)]


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
    on atoms 1..n_atoms, HILLS and COLVAR in ``folder``; temp (K for models in nm/Å,
    reduced for lj models) None: the LJ state point."""
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
    fingerprint = cfg.fingerprint() if cfg.restart_every else ""
    start = _resume_point(cfg, folder, fingerprint) if cfg.resume else None
    earlier = (start.step, start.seconds) if start else (0, 0.0)  # steps and MD seconds of earlier sittings
    if start is None:
        for old in RUN_OUTPUTS:
            (folder / old).unlink(missing_ok=True)
        if cfg.restart_every:
            resume.start_fresh(folder, fingerprint)
    else:
        resume.record_fingerprint(folder, fingerprint)
        resume.cut_dump(folder / "traj.dump", start.step)
    if cfg.plumed is not None:
        (folder / "plumed.dat").write_text(cfg.plumed)
    target = cfg.target
    if target.commands:
        (folder / "system.lmp").write_text(target.commands)
    judge = _Judge(cfg, target, folder / "traj.dump", earlier)
    lmp = open_lammps(
        ["-log", str(folder / (f"log.from{start.step}.lammps" if start else "log.lammps"))],
        variables=_variables(cfg, target, folder, start),
        load_fix_plumed=cfg.plumed is not None,
        plumed_kernel=cfg.kernel or None,
    )
    try:
        chunk = cfg.chunk_steps or max(cfg.steps // 50, 100)
        with tqdm(total=_total_steps(cfg, target, start), unit="step", desc=cfg.label, disable=not cfg.progress) as bar:
            timings = run_input(
                lmp,
                target.input_file,
                chunk_steps=chunk,
                progress=bar,
                stop_last_run=judge.stop,
            )
    finally:
        lmp.close()
    steps_run, seconds = timings[-1]
    first = judge.update()
    return MetadRun(
        folder,
        cfg.plumed is not None,
        earlier[0] + steps_run,
        earlier[1] + seconds - judge.seconds,
        first,
        list(judge.watch.steps) if judge.watch else [],
        list(judge.watch.values) if judge.watch else [],
    )


def _resume_point(cfg: MetadRunConfig, folder: Path, fingerprint: str) -> "resume.ResumePoint | None":
    """Where the run in ``folder`` continues: its settings as this latentcv records them or
    as an older one did (with the budget in them), restart files before this budget only."""
    older = cfg.older_fingerprints(resume.restart_files(folder))
    return resume.resume_point(folder, fingerprint, also=older, before=cfg.steps)


class _Judge:
    """Follows the dump while the run writes it (``CrystallisationWatch``); ``stop`` is
    ``run_input``'s ``stop_last_run``, judging every ``check_every`` steps and keeping the
    time it took (not MD time); with restart files it notes the wall time reached at each
    check (``sittings.json``), counted from the run's first sitting (``earlier``: the steps
    and MD seconds of the sittings before this one)."""

    def __init__(self, cfg: MetadRunConfig, target: MetadSystem, dump: Path, earlier: tuple[int, float]) -> None:
        from latentcv.cv_models.analysis.crystallinity import CrystallisationWatch

        cutoff = cfg.judge_cutoff or target.judge_cutoff
        self.watch = (
            CrystallisationWatch(
                dump,
                lambda f: crystal_fraction(f, target.criterion, cutoff),
                cfg.crystal_threshold,
                cfg.hold_steps,
                units=target.units,
            )
            if cfg.judge
            else None
        )
        self.every = cfg.check_every or cfg.hold_steps // 2
        self.checked = 0
        self.seconds = 0.0
        self.stop_when_crystallised = cfg.stop_when_crystallised
        self.folder = Path(cfg.folder) if cfg.restart_every else None
        self.earlier = earlier

    def update(self) -> int | None:
        """Judge the frames dumped since the last call; the crystallisation step or None."""
        return None if self.watch is None else self.watch.update()

    def stop(self, done: int, seconds: float) -> bool:
        if done - self.checked < self.every:
            return False
        self.checked = done
        if self.folder is not None:
            resume.record_sitting(self.folder, self.earlier[0] + done, self.earlier[1] + seconds - self.seconds)
        began = time.perf_counter()
        first = self.update()
        self.seconds += time.perf_counter() - began
        return self.stop_when_crystallised and first is not None


def _variables(cfg: MetadRunConfig, target: MetadSystem, folder: Path, start: "resume.ResumePoint | None") -> dict:
    """The -var values of the system's ``metad.lmp`` (None settings: the system's own);
    resumed from ``start``: its restart file and the steps left."""
    v = dict(
        **target.variables,
        seed=cfg.seed,
        steps=cfg.steps - (start.step if start else 0),
        resume="yes" if start else "no",
        restartfile=start.restart_file if start else "none",
        restartevery=cfg.restart_every,
        restartstem=folder / resume.RESTART_STEM,
        bias="yes" if cfg.plumed is not None else "no",
        plumedfile=folder / "plumed.dat" if cfg.plumed is not None else "none",
        plumedlog=folder / "plumed.log",
        every=cfg.dump_every,
        dump=folder / "traj.dump",
    )
    if target.commands:
        v["system"] = folder / "system.lmp"
    optional = {"temp": cfg.temp, "melt": cfg.melt_steps, "equil": cfg.equil_steps}
    v.update({k: value for k, value in optional.items() if value is not None})
    return v


def _total_steps(cfg: MetadRunConfig, target: MetadSystem, start: "resume.ResumePoint | None") -> int:
    """MD steps of the whole input (the progress bar): the preparation runs (the system's
    ``melt``, ``quench``, ``equil`` or the given ones) and ``steps``; resumed: the steps left."""
    if start:
        return cfg.steps - start.step
    given = {"melt": cfg.melt_steps, "equil": cfg.equil_steps}
    return cfg.steps + sum(given[k] if given.get(k) is not None else n for k, n in target.prep_steps.items())
