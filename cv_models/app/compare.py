"""``latentcv compare``: which CV makes the melt crystallise first?

Runs well-tempered metadynamics of the same undercooled melt of an embedded system
(``examples/<system>/metad.lmp``: LJ atoms, dimers, trimers, mW water) or of the user's own
system (a system file, :mod:`~latentcv.cv_models.system_file`: their data file, force field
and judge; ``examples/user/metad.lmp``) with identical MD and METAD settings (PACE, HEIGHT in kT, BIASFACTOR, bias STRIDE) biased, in turn, on

- ``latent``: a latentcv model's output (default ``n_crystal``) through ``LATENT_CV``;
- ``q6``: PLUMED's Steinhardt ``Q6 ... VMEAN`` on the atoms (on molecule centres,
  PLUMED ``CENTER`` virtual atoms, for molecules);
- ``cluster``: PLUMED's analytic size of the largest cluster of solid-like atoms or
  molecule centres (``LOCAL_Q6`` → ``MORE_THAN`` → ``CONTACT_MATRIX`` → ``DFSCLUSTERING`` →
  ``CLUSTER_PROPERTIES``), the local CV of the nucleation literature; on systems judged by
  CHILL+ (mW water) the largest cluster of ice-like molecules (``LOCAL_Q3``, as ``ice``);
- ``ice``: PLUMED's smooth count of ice-like molecules, CHILL+'s staggered bonds made
  smooth: ``Q3`` → ``LOCAL_Q3`` (the sum over neighbours of the normalised q3 dot
  products, −1 for each staggered bond of ice) → ``MORE_THAN`` on its negative → ``SUM``
  (for tetrahedral crystals: mW ice);
- ``energy``: PLUMED's ``ENERGY`` (the potential energy);

over several velocity seeds, each CV with SIGMA = ``METAD_DEFAULTS.sigma_melt_stds`` (4) of
its own standard deviations in the unbiased melt (measured first, in one calibration run)
and HEIGHT ``METAD_DEFAULTS.height_kt`` (2 kT): the same hills for every CV.
Crystallisation is judged independently of every CV: the solid fraction (freud's ten Wolde on atoms / centres; for the orientationally
ordered trimers the share of molecules with local P2 > 0.5, since ten Wolde on their
centres reads 0 % in the crystal) above 0.8 held for 5 000 steps; OVITO's polyhedral
template matching, when installed, says which structure formed. A run stops once it has
crystallised. Writes ``<out>/results.md`` (the table), ``<out>/runs.json``
and ``<out>/compare.png``.

A run killed part way (a session's end, a queue's limit) continues where it was when the
same command runs again: each run writes a LAMMPS restart file at every check
(``runs/<cv>-seed<k>/rs.<step>``) and resumes from the newest one (docs/restarts.md,
"Runs over several sittings"); finished runs are kept.

    latentcv compare model.pt --seeds 5 --steps 60000 --out compare_out
    latentcv compare model.pt --system-file my_system.toml --seeds 5 --steps 60000
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from latentcv.cv_models.app.compare_report import markdown_table, plot, summarise
from latentcv.cv_models.app.metad_run import MetadRunConfig, judge_name, run_metadynamics
from latentcv.cv_models.app.resume import last_sitting
from latentcv.cv_models.app.run_failure import BlowUp, lammps_blow_up
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.atomic_write import write_atomically
from latentcv.cv_models.system_file import MetadSystem, SystemFile, load_system_file, metad_system
from latentcv.cv_models.systems import METAD_DEFAULTS
from latentcv.cv_models.units import LAMMPS_UNIT_STYLES
from latentcv.export.bias_settings import opes_lines
from latentcv.export.plumed_input import KB_KJ_PER_MOL_K

CVS = ("latent", "q6", "cluster", "ice", "energy")


@dataclass
class CompareConfig:
    """What ``latentcv compare`` runs.

    Attributes:
        model: exported latentcv model (``latentcv export``) for the ``latent`` CV.
        output: the model output biased by the ``latent`` CV.
        system: embedded system (``latentcv.cv_models.systems.SYSTEMS``): "lj", "dimers",
            "trimers", "mw"; with ``system_file``, its name (reports).
        system_file: the user's own system (:func:`~latentcv.cv_models.system_file.load_system_file`):
            their data file, force field, state point and judge; "" = the embedded ``system``.
        cvs: CVs to compare (subset of :data:`CVS`).
        seeds: velocity seeds (one run per CV and seed).
        cells: lattice cells per box edge of the melt (the system's molecules per cell × cells³;
            unused with ``system_file``: its data file's box).
        steps: metadynamics budget per run (steps).
        temp: state point (the system's units: reduced, or K); 0 = the system's.
        pace, height_kt, biasfactor, stride: METAD PACE, HEIGHT in kT, BIASFACTOR and the
            bias STRIDE (multiple time stepping: forces every ``stride`` steps, scaled; 0 =
            the system's, ``MetadSystem.bias_stride``: 5, 1 for mW's 10 fs steps), the
            same for every CV.
        method: "metad" (well-tempered METAD: HEIGHT, BIASFACTOR) or "opes" (OPES_METAD:
            BARRIER = ``barrier_kt`` kT, SIGMA its starting kernel width; HILLS is then
            OPES's kernels file).
        barrier_kt: OPES's BARRIER, the expected nucleation barrier in kT.
        sigma_scale: SIGMA = sigma_scale × the CV's std in the unbiased melt.
        calibration_steps: length of the unbiased melt run measuring the spreads.
        q6_cutoff: neighbour cutoff (the system's length unit: σ or Å) of PLUMED's Q6
            switching function (CUBIC, D_0 = cutoff − 0.3 σ in reduced units, 0.8 × cutoff
            in physical ones) and of the judge; 0 = the system's judge cutoff.
        crystal_threshold, hold_steps: crystallised = solid fraction above the threshold
            (0 = the system's, ``MetadSystem.crystal_threshold``: 0.8, 0.7 for mW ice) for
            this many steps.
        dump_every: frames kept for the judge; check_every: steps between checks (a
            crystallised run stops).
        cluster_solid_q6: (D_0, D_MAX) of the CUBIC switch on LOCAL_Q6 that makes a
            molecule solid-like for the ``cluster`` CV (0 below D_0, 1 above D_MAX); ()
            = the system's (``MetadSystem.cluster_solid_q6``): (5, 7), about 6 of 12
            neighbours with aligned q6, ten Wolde's criterion made smooth; (2.5, 3.5) for
            the trimers' centres.
        ice_q3: (D_0, D_MAX) of the CUBIC switch on −LOCAL_Q3 (about the number of
            staggered bonds, q̂3·q̂3* = −1) that makes a molecule ice-like for the ``ice`` CV
            and, on systems judged by CHILL+, the ``cluster`` CV (0 below D_0, 1 above
            D_MAX): about 3 of 4 bonds staggered. −LOCAL_Q3 in mW (docs/results.md
            section 7): perfect ice Ih 3.11, Ic 4, ice at 230 K median 2.98, the melt at
            230 K median 1.5.
        kernel: PLUMED kernel library for all runs: "" = the bundled one, "optimised" =
            the -O3 build of ``make plumed-opt`` (the fair peer for PLUMED's own Q6), or a path.
        workers: LAMMPS processes at once (one per core).
        out: output folder.
    """

    model: str = ""
    output: str = "n_crystal"
    system: str = "lj"
    system_file: str = ""
    cvs: tuple[str, ...] = CVS
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    cells: int = 4
    steps: int = 60000
    temp: float = 0.0
    pace: int = METAD_DEFAULTS.pace
    height_kt: float = METAD_DEFAULTS.height_kt
    biasfactor: float = METAD_DEFAULTS.biasfactor
    stride: int = 0
    method: str = "metad"
    barrier_kt: float = METAD_DEFAULTS.barrier_kt
    sigma_scale: float = METAD_DEFAULTS.sigma_melt_stds
    calibration_steps: int = 5000
    q6_cutoff: float = 0.0
    crystal_threshold: float = 0.0
    hold_steps: int = 5000
    dump_every: int = 500
    check_every: int = 5000
    cluster_solid_q6: tuple[float, ...] = ()
    ice_q3: tuple[float, float] = (2.4, 2.8)
    kernel: str = ""
    workers: int = 2
    out: str = "compare_out"

    @property
    def run_system(self) -> str | SystemFile:
        """What the runs run: the system file's system, or the embedded ``system``'s name."""
        return load_system_file(self.system_file) if self.system_file else self.system

    @property
    def target(self) -> MetadSystem:
        return metad_system(self.run_system, self.cells)

    @property
    def n_molecules(self) -> int:
        return self.target.n_molecules

    @property
    def n_atoms(self) -> int:
        return self.target.n_atoms

    @property
    def metad_input_file(self) -> Path:
        return self.target.input_file

    def validate(self) -> "CompareConfig":
        """Checks; returns a copy with the system's defaults filled in."""
        target = self.target
        if not target.input_file.exists():
            raise ValueError(f"system {target.name!r} has no metadynamics input {target.input_file}")
        resolved = replace(
            self,
            system=target.name,
            system_file=str(Path(self.system_file).resolve()) if self.system_file else "",
            temp=self.temp or target.temperature,
            q6_cutoff=self.q6_cutoff or target.judge_cutoff,
            stride=self.stride or target.bias_stride,
            crystal_threshold=self.crystal_threshold or target.crystal_threshold,
            cluster_solid_q6=tuple(self.cluster_solid_q6) or target.cluster_solid_q6,
        )
        bad = [c for c in self.cvs if c not in CVS]
        if bad:
            raise ValueError(f"unknown CV(s) {bad}: choose from {', '.join(CVS)}")
        if "latent" in self.cvs and not Path(self.model).is_file():
            raise ValueError(f"model file {self.model!r} not found: pass an exported model (`latentcv export`)")
        if self.stride < 0:
            raise ValueError(f"--bias-stride {self.stride}: a number of steps >= 1 (0: the system's)")
        if self.pace % resolved.stride or self.dump_every % resolved.stride:
            raise ValueError("--pace and the dump stride must be multiples of --stride")
        if self.check_every % self.dump_every:
            raise ValueError("check_every must be a multiple of dump_every")
        if self.method not in ("metad", "opes"):
            raise ValueError(f"--method {self.method!r}: 'metad' (well-tempered METAD) or 'opes' (OPES_METAD)")
        if not (math.isfinite(self.barrier_kt) and self.barrier_kt > 0):
            raise ValueError(f"--barrier {self.barrier_kt!r}: the expected barrier in kT, a number > 0")
        if not (math.isfinite(self.sigma_scale) and self.sigma_scale > 0):
            raise ValueError(f"--sigma-scale {self.sigma_scale!r}: must be a finite number > 0")
        if self.kernel == "optimised":
            from latentcv.cv_models.native import paths

            resolved = replace(resolved, kernel=str(paths.optimised_plumed_kernel()))
        elif self.kernel and not Path(self.kernel).is_file():
            raise ValueError(f"PLUMED kernel {self.kernel!r} not found (`make plumed-opt` builds the optimised one)")
        return resolved


# ---------------------------------------------------------------------------- plumed.dat
def cv_lines(cfg: CompareConfig, cv: str, natoms: int) -> tuple[list[str], str]:
    """PLUMED lines defining one CV and the name of the value to bias."""
    if cv == "latent":
        from latentcv.cv_models.native import paths

        return (
            [
                f"LOAD FILE={paths.plumed_plugin_path()}",  # loads in the optimised kernel too (same PLUMED)
                f"cv: LATENT_CV MODEL={Path(cfg.model).resolve()} ATOMS=1-{natoms} DEVICE=cpu THREADS=1",
            ],
            f"cv.{cfg.output}",
        )
    if cv == "q6":
        lines, species, switch = _q6_lines(cfg, natoms)
        return (lines + [_q6_action(species, switch)], "q6.vmean")
    if cv == "cluster":
        return (_largest_cluster_lines(cfg, natoms), "cluster.sum")
    if cv == "ice":
        return (_ice_like_lines(cfg, natoms) + ["ice: SUM ARG=icelike PERIODIC=NO"], "ice")
    if cv == "energy":
        return (["e: ENERGY"], "e")
    raise ValueError(cv)


def _q6_lines(cfg: CompareConfig, natoms: int) -> tuple[list[str], str, str]:
    """The CENTER virtual atoms of molecules (none for atoms), the SPECIES of PLUMED's
    Steinhardt actions and their neighbour switching function."""
    apm = natoms // cfg.n_molecules
    lines, species = [], f"1-{natoms}"
    if apm > 1:  # on molecule centres (PLUMED virtual atoms)
        lines = [f"m{k + 1}: CENTER ATOMS={k * apm + 1}-{(k + 1) * apm}" for k in range(cfg.n_molecules)]
        species = ",".join(f"m{k + 1}" for k in range(cfg.n_molecules))
    return lines, species, _cubic_switch(cfg, cfg.q6_cutoff)


def _cubic_switch(cfg: CompareConfig, cutoff: float) -> str:
    """PLUMED's CUBIC neighbour switch ending at ``cutoff`` (the system's length unit):
    D_0 = cutoff − 0.3 σ in reduced units, 0.8 × cutoff in physical ones (PLUMED's nm)."""
    style = LAMMPS_UNIT_STYLES[cfg.target.units]  # PLUMED's lengths: σ (natural units) or nm
    nm = style.nm or 1.0
    d0 = max(cutoff - 0.3, 0.0) if not style.nm else 0.8 * cutoff
    return f"CUBIC D_0={d0 * nm:g} D_MAX={cutoff * nm:g}"


def _q6_action(species: str, switch: str, vmean: bool = True) -> str:
    """PLUMED's Q6 vectors of ``species`` (and, ``vmean``, their mean: the ``q6`` CV): the
    line the ``q6`` and ``cluster`` CVs share (:func:`calibration_input` keeps one)."""
    return f"q6: Q6 SPECIES={species} SWITCH={{{switch}}}" + (" VMEAN" if vmean else "")


def _ice_like_lines(cfg: CompareConfig, natoms: int) -> list[str]:
    """PLUMED lines ending in ``icelike``, each molecule's ice-likeness in [0, 1]: LOCAL_Q3
    (in PLUMED 2.11 the sum over neighbours j of σ(r_ij) Re q̂3(i)·q̂3(j)*, with q̂3 the
    normalised q3 vector; −1 per staggered bond, so −4 in perfect ice Ic, −3.11 in Ih),
    negated and through MORE_THAN with the CUBIC switch ``ice_q3`` (0 below its D_0, 1
    above its D_MAX; PLUMED 2.11's CUBIC gives NaN below a negative D_0, hence the
    negation): CHILL+'s "3 or 4 of 4 bonds staggered" (Nguyen & Molinero 2015) made smooth."""
    lines, species, switch = _q6_lines(cfg, natoms)
    low, high = cfg.ice_q3
    return lines + [
        f"q3: Q3 SPECIES={species} SWITCH={{{switch}}}",
        f"lq3: LOCAL_Q3 SPECIES=q3 SWITCH={{{switch}}}",
        "minus_lq3: CUSTOM ARG=lq3 FUNC=-x PERIODIC=NO",
        f"icelike: MORE_THAN ARG=minus_lq3 SWITCH={{CUBIC D_0={low:g} D_MAX={high:g}}}",
    ]


def _largest_cluster_lines(cfg: CompareConfig, natoms: int) -> list[str]:
    """PLUMED's analytic largest-cluster CV (Tribello et al., JCTC 13, 1317 (2017)):
    solid-like = LOCAL_Q6 (the sum over neighbours of the normalised q6 dot products: ~10
    in a close-packed crystal, ~2.5 in the LJ melt) switched on between
    ``cluster_solid_q6``, or on systems judged by CHILL+ ice-like (:func:`_ice_like_lines`);
    solid-like neighbours form a contact graph; the CV is the solid-likeness summed over
    its largest connected component (DFSCLUSTERING), whose contacts reach the system's
    ``cluster_link`` (the trimers' rod layers) or else the Q6 cutoff. Differentiable at
    fixed cluster membership; a molecule joining or leaving the largest cluster makes it
    jump, as the literature's n_max does."""
    lines, species, switch = _q6_lines(cfg, natoms)
    link = _cubic_switch(cfg, cfg.target.cluster_link) if cfg.target.cluster_link else switch
    if cfg.target.criterion == "chill_plus":
        lines, solid = _ice_like_lines(cfg, natoms), "icelike"
    else:
        low, high = cfg.cluster_solid_q6
        solid = "solid"
        lines += [
            _q6_action(species, switch, vmean=False),  # as written by runs that resume
            f"lq6: LOCAL_Q6 SPECIES=q6 SWITCH={{{switch}}}",
            f"solid: MORE_THAN ARG=lq6 SWITCH={{CUBIC D_0={low:g} D_MAX={high:g}}}",
        ]
    return lines + [
        f"contact: CONTACT_MATRIX GROUP={species} SWITCH={{{link}}}",
        f"both_solid: OUTER_PRODUCT ARG={solid},{solid} MASK=contact",
        "solid_contact: CUSTOM ARG=contact,both_solid FUNC=x*y PERIODIC=NO",
        "clusters: DFSCLUSTERING ARG=solid_contact",
        f"cluster: CLUSTER_PROPERTIES ARG={solid} CLUSTERS=clusters CLUSTER=1 SUM",
    ]


def calibration_input(cfg: CompareConfig, natoms: int, colvar: Path) -> str:
    """One PLUMED input printing every CV of ``cfg.cvs`` (lines the CVs share, e.g. the
    Q6 or Q3 vectors and molecule centres, once: a label may be defined only once)."""
    lines, args = [], []
    for cv in cfg.cvs:
        body, arg = cv_lines(cfg, cv, natoms)
        lines = _one_definition_per_label(lines, body)
        args.append(arg)
    lines.append(f"PRINT ARG={','.join(args)} STRIDE=50 FILE={colvar}")
    return "\n".join(lines) + "\n"


def _one_definition_per_label(lines: list[str], more: list[str]) -> list[str]:
    """``lines`` followed by those of ``more`` whose label is new; a line that repeats a
    label with more keywords (the Q6 line with VMEAN) replaces the shorter one."""
    out = list(lines)
    for line in more:
        if line in out:
            continue
        label = line.split(":", 1)[0] if ":" in line.split(" ", 1)[0] else None
        same = [k for k, old in enumerate(out) if label and old.split(":", 1)[0] == label]
        if not same:
            out.append(line)
        elif line.startswith(out[same[0]]):
            out[same[0]] = line
    return out


def metad_input(cfg: CompareConfig, cv: str, natoms: int, sigma: float, md: Path) -> str:
    body, arg = cv_lines(cfg, cv, natoms)
    natural = not LAMMPS_UNIT_STYLES[cfg.target.units].nm  # units lj: PLUMED's natural units, k_B = 1
    kt = cfg.temp if natural else KB_KJ_PER_MOL_K * cfg.temp  # else kJ/mol, temp in K
    stride = f" STRIDE={cfg.stride}" if cfg.stride > 1 else ""
    if cfg.method == "opes":
        bias = opes_lines("metad", arg, sigma, cfg.barrier_kt * kt, cfg.pace, cfg.temp, str(md / "HILLS"), cfg.stride)
    else:
        bias = [
            f"metad: METAD ARG={arg} SIGMA={sigma:.6g} HEIGHT={cfg.height_kt * kt:.6g} PACE={cfg.pace} "
            f"BIASFACTOR={cfg.biasfactor:g} TEMP={cfg.temp:g} FILE={md / 'HILLS'}{stride}"
        ]
    printed = f"PRINT ARG={arg},metad.bias STRIDE={max(cfg.dump_every // 5, cfg.stride)} FILE={md / 'COLVAR'}"
    return "\n".join(body + bias + [printed]) + "\n"


# ---------------------------------------------------------------------------- one run
def run_config(cfg: CompareConfig, folder: Path, seed: int, plumed: str, steps: int) -> MetadRunConfig:
    """One LAMMPS run of the compared melt (:func:`~latentcv.cv_models.app.metad_run.run_metadynamics`)
    with ``plumed``: the same MD and judge for every CV, checked every ``check_every`` steps."""
    return MetadRunConfig(
        folder=folder,
        plumed=plumed,
        system=cfg.run_system,
        cells=cfg.cells,
        steps=steps,
        seed=seed,
        temp=cfg.temp,
        dump_every=cfg.dump_every,
        kernel=cfg.kernel,
        judge_cutoff=cfg.q6_cutoff,
        crystal_threshold=cfg.crystal_threshold,
        hold_steps=cfg.hold_steps,
        check_every=cfg.check_every,
        chunk_steps=cfg.check_every,
        restart_every=cfg.check_every,
        resume=True,
        progress=False,
    )


def _run_key(cfg: CompareConfig) -> dict:
    """The settings a finished run's physics depends on (a run with the same key is
    reused; the PLUMED kernel only changes its speed and is recorded with each run)."""
    keep = (
        "model",
        "output",
        "system",
        "system_file",
        "cells",
        "steps",
        "temp",
        "pace",
        "height_kt",
        "biasfactor",
        "stride",
        "method",
        "barrier_kt",
        "sigma_scale",
        "calibration_steps",
        "q6_cutoff",
        "crystal_threshold",
        "hold_steps",
        "dump_every",
        "check_every",
    )
    key = {k: getattr(cfg, k) for k in keep}
    if cfg.method == "metad":  # BARRIER is OPES's: it changes nothing in a METAD run
        del key["barrier_kt"]
    return key


def _same_key(saved: dict | None, cfg: CompareConfig, any_budget: bool = False) -> bool:
    """A saved run key equals this config's (keys written before `system` existed are LJ,
    before `system_file`: an embedded system, before `method`: WT-METAD; a METAD run's
    saved BARRIER is ignored); ``any_budget``: whatever their ``steps``."""
    if saved is None:
        return False
    full = {"system": "lj", "system_file": "", "method": "metad", **saved}
    if full["method"] == "metad":
        full.pop("barrier_kt", None)
    mine = _run_key(cfg)
    if any_budget:
        full.pop("steps", None)
        mine.pop("steps")
    return full == mine


def _finished_within(old: dict, cfg: CompareConfig, sigma: float) -> dict | None:
    """A finished run's result for this config, when the run is the same whatever the
    budget: same settings and SIGMA, and it stopped (crystallised, or at a budget) no later
    than this budget and not short of it: crystallised or blown up, or run to exactly this budget. A run
    that ran out of a shorter budget is not: it is carried on from its restart files."""
    if old.get("sigma") != sigma or not _same_key(old.get("key"), cfg, any_budget=True):
        return None
    stopped = int(old.get("steps_run", -1))
    ended = old.get("crystallised_at") is not None or bool(old.get("blew_up"))
    if stopped == cfg.steps or (ended and stopped <= cfg.steps):
        return {**old, "key": _run_key(cfg)}
    return None


def melt_sigmas(data: np.ndarray, cvs: tuple[str, ...], scale: float) -> dict[str, float]:
    """SIGMA per CV: ``scale`` × its std over an unbiased melt, after the first fifth.

    data: (frames, len(cvs)) values from the calibration COLVAR. A CV that does not move
    in the melt (std 0, or not finite) cannot be biased from there: its hills would have
    zero width and its gradient no force, so it is refused with the reason."""
    settled = data[len(data) // 5 :]  # drop the first fifth (the bias-free melt settles)
    std = settled.std(axis=0)
    sigma = {cv: float(scale * std[k]) for k, cv in enumerate(cvs)}
    for k, cv in enumerate(cvs):
        if not (math.isfinite(sigma[cv]) and sigma[cv] > 0):
            raise ValueError(
                f"{cv}: it does not move in the unbiased melt (mean {settled[:, k].mean():.6g}, "
                f"std {std[k]:.3g} over {len(settled)} frames), so a bias on it has no force "
                "there and its SIGMA would be 0. Bias an output that reads the melt's fluctuations "
                "(n_crystal, or an export with --crystal-softness), or, for PLUMED's cluster CV, "
                "lower the system's cluster_solid_q6 switch to what its crystal reads "
                "(benchmarks/cluster_thresholds.py)"
            )
    return sigma


def calibrate(cfg: CompareConfig) -> dict[str, float]:
    """SIGMA of every CV: ``sigma_scale`` × its std over an unbiased melt run (seed 777).
    The SIGMAs are kept in ``calibration/sigma.json``; a later call with the same settings
    reuses them and calibrates only CVs not yet there (the same seed: the same melt)."""
    md = Path(cfg.out) / "calibration"
    md.mkdir(parents=True, exist_ok=True)
    stamp = md / "sigma.json"
    saved: dict[str, float] = {}
    if stamp.exists():
        record = json.loads(stamp.read_text())
        if _same_key(record["key"], cfg, any_budget=True):  # the budget changes no calibration
            saved = record["sigma"]
    missing = tuple(c for c in cfg.cvs if c not in saved)
    if not missing:
        return saved
    colvar = md / f"COLVAR.{'-'.join(missing)}"
    sub = replace(cfg, cvs=missing)
    plumed = calibration_input(sub, cfg.n_atoms, colvar)
    run_metadynamics(
        replace(
            run_config(sub, md, 777, plumed, cfg.calibration_steps),
            judge=False,
            chunk_steps=cfg.calibration_steps,
            restart_every=0,
            resume=False,
        )
    )
    data = read_plumed_table(colvar).data[:, 1:]
    sigma = {**saved, **melt_sigmas(data, missing, cfg.sigma_scale)}
    write_atomically(stamp, json.dumps({"key": _run_key(cfg), "sigma": sigma}).encode(), "calibration record")
    return sigma


def run_one(cfg: CompareConfig, cv: str, seed: int, sigma: float) -> dict:
    """One metadynamics run, checked every ``check_every`` steps and stopped once crystallised."""
    md = Path(cfg.out) / "runs" / (f"{cv}-seed{seed}" if cfg.method == "metad" else f"{cv}-{cfg.method}-seed{seed}")
    done_file = md / "result.json"
    if done_file.exists():  # a finished run with the same settings is kept (e.g. after a crash)
        kept = _finished_within(json.loads(done_file.read_text()), cfg, sigma)
        if kept is not None:
            return kept
    plumed = metad_input(cfg, cv, cfg.n_atoms, sigma, md)
    try:
        run = run_metadynamics(replace(run_config(cfg, md, seed, plumed, cfg.steps), stop_when_crystallised=True))
    except Exception:
        blown = lammps_blow_up(md)
        if blown is None:
            raise
        return _record_blow_up(cfg, cv, seed, sigma, md, blown)
    result = {
        **_run_identity(cfg, cv, seed, sigma),
        "steps_run": run.steps_run,
        "ms_per_step": run.ms_per_step,
        "crystallised_at": run.crystallised_at,
        "steps": run.steps,
        "solid_fraction": run.fraction,
        "wall_s_to_crystal": run.wall_s_to_crystal,
        "structure": _structure(run.dump, cfg.target.units, cfg.target.criterion),
    }
    write_atomically(done_file, json.dumps(result).encode(), "run record")
    return result


def _run_identity(cfg: CompareConfig, cv: str, seed: int, sigma: float) -> dict:
    """The fields that name a run in its record: CV, seed, SIGMA, settings key, PLUMED kernel."""
    return {"cv": cv, "seed": seed, "sigma": sigma, "key": _run_key(cfg), "kernel": cfg.kernel or "bundled"}


def _record_blow_up(cfg: CompareConfig, cv: str, seed: int, sigma: float, md: Path, blown: BlowUp) -> dict:
    """The record of a run LAMMPS stopped because its atoms flew apart: not crystallised,
    stopped at the blow-up step, with LAMMPS's message (kept: a rerun would blow up again)."""
    checked, seconds = last_sitting(md)
    step = blown.step if blown.step is not None else checked
    result = {
        **_run_identity(cfg, cv, seed, sigma),
        "steps_run": step,
        "ms_per_step": 1e3 * seconds / checked if checked else float("nan"),
        "crystallised_at": None,
        "steps": [],
        "solid_fraction": [],
        "wall_s_to_crystal": None,
        "structure": None,
        "blew_up": blown.message,
    }
    write_atomically(md / "result.json", json.dumps(result).encode(), "run record")
    return result


def _structure(dump: Path, units: str, criterion: str = "ten_wolde") -> dict[str, float] | None:
    """OVITO's structure fractions of the last frame (None without OVITO): polyhedral
    template matching, or for ice (``criterion`` "chill_plus") its diamond-structure
    identification; ``units``: the dump's LAMMPS style."""
    try:
        from latentcv.cv_models.analysis.crystallinity import ovito_structures
        from latentcv.cv_models.analysis.ice import ovito_diamond
        from latentcv.cv_models.data import read_lammps_dump

        frames = read_lammps_dump(dump, units=units)
        analyse = ovito_diamond if criterion == "chill_plus" else ovito_structures
        return analyse(frames[-1]) if frames else None
    except ImportError:
        return None


def _run_job(args: tuple) -> dict:
    cfg, cv, seed, sigma = args
    return run_one(cfg, cv, seed, sigma)


def compare(cfg: CompareConfig, log=print) -> str:
    """Calibrate, run every (CV, seed) on ``workers`` processes, write the table and plot;
    returns the markdown table."""
    from tqdm.auto import tqdm

    cfg = cfg.validate()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"latentcv compare: calibration ({cfg.calibration_steps} unbiased steps) for the SIGMA of {', '.join(cfg.cvs)}")
    sigmas = calibrate(cfg)
    log("latentcv compare: SIGMA " + ", ".join(f"{k}={v:.4g}" for k, v in sigmas.items()))
    results: list[dict] = []
    jobs = [(cfg, cv, seed, sigmas[cv]) for seed in cfg.seeds for cv in cfg.cvs]
    # all finished runs of the same settings in the folder enter the table (runs of
    # other CVs done earlier, e.g. Q6 in a separate call)
    for path in sorted((out / "runs").glob("*/result.json")) if (out / "runs").exists() else []:
        saved = json.loads(path.read_text())
        r = _finished_within(saved, cfg, sigmas.get(saved.get("cv"), saved.get("sigma")))
        if r is not None and (r["cv"], r["seed"]) not in {(j[1], j[2]) for j in jobs}:
            results.append(r)
    with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=get_context("spawn")) as pool:
        for r in tqdm(pool.map(_run_job, jobs), total=len(jobs), desc="latentcv compare", unit="run"):
            results.append(r)
            when = "never" if r["crystallised_at"] is None else f"step {r['crystallised_at']}"
            if r.get("blew_up"):
                when += f" (blew up at step {r['steps_run']}: {r['blew_up']})"
            log(f"  {r['cv']:7s} seed {r['seed']}: crystallised {when}, {r['ms_per_step']:.2f} ms/step")
    record = json.dumps({"config": asdict(cfg), "sigma": sigmas, "runs": results}, indent=1)
    write_atomically(out / "runs.json", record.encode(), "compare record")
    table = markdown_table(summarise(results, CVS), cfg, sigmas, judge_name(cfg.target.criterion))
    write_atomically(out / "results.md", (table + "\n").encode(), "compare table")
    plot(results, CVS, cfg.crystal_threshold, out / "compare.png")
    return table
