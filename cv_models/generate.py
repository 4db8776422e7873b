"""Generate labeled training data for the embedded systems with LAMMPS (in-process).

The MD protocols are plain LAMMPS inputs a person can read and run by hand:
``examples/{lj,dimers,trimers,mw}/{crystal,melt,interface}.lmp`` (each includes its folder's
``system.lmp``). The generator runs those files through the LAMMPS
Python module (:func:`latentcv.cv_models.engines.open_lammps`), setting their ``index`` variables
(size, seed, state point, step counts, output files) first, and splits every ``run``
into chunks to drive a tqdm progress bar. It then reads the dumps back with
:func:`latentcv.cv_models.data.readers.read_lammps_dump` (molecules from the data file's bonds).

Phases:

- ``crystal``: the lattice (fcc LJ; fcc of randomly oriented dimers = plastic crystal;
  trimers: rods aligned along z in AB-stacked layers = orientationally ordered crystal;
  mW water: ice Ih, or Ic with the file's ``lattice`` variable)
  equilibrated and sampled at the state point → label CRYSTAL.
- ``melt``: the lattice melted at ``melt_temperature``, quenched linearly to the state
  point, equilibrated and sampled → label MELT.
- ``transition`` (LJ only by default): the melt quenched to ``transition_temperature``
  (0.45) where it crystallises spontaneously after 20–30k steps → UNLABELED.
- ``interface`` (LJ, dimers, trimers, mW): a crystal seed (slab or sphere, ``interface_seeds``) in its own
  melt in an elongated box (``examples/{lj,trimers}/interface.lmp``), then free growth or melting
  → UNLABELED frames with every amount of crystal; label their molecules with a local
  criterion (``[data] molecule_labels = "ten_wolde"`` in training).

Presets (:meth:`GeneratorConfig.preset`): ``tiny`` for tests (3³ cells, a few hundred
steps, seconds) and ``default`` for training (6³ cells, minutes on one core).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.data.frames import CRYSTAL, MELT, UNLABELED
from latentcv.cv_models.data.readers import read_lammps_dump
from latentcv.cv_models.systems import SYSTEMS, SystemSpec

PHASE_LABELS = {"crystal": CRYSTAL, "melt": MELT, "transition": UNLABELED, "interface": UNLABELED}


@dataclass
class GeneratorConfig:
    """What to simulate. Temperatures etc. left at None take the system's state point.

    Attributes:
        system: a key of ``SYSTEMS``: "lj", "dimers", "trimers" or "mw".
        n_cells: unit cells per box edge (N = ``spec.molecules_per_cell`` n_cells³: 4 per
            fcc cell, 8 per trimer cell).
        phases: any of "crystal", "melt", "transition".
        replicas: independent trajectories per phase (seeds seed, seed+1, ...).
        equil_steps: equilibration at the state point before sampling.
        prod_steps: sampled steps of crystal and melt runs.
        dump_every: dump stride in steps.
        melt_steps, quench_steps: melting at melt_temperature, then linear quench.
        transition_steps: sampled steps of the transition run (no equilibration).
        seed: LAMMPS velocity (and dimer orientation) seed of the first replica.
        temperature, pressure, melt_temperature, transition_temperature: overrides.
        interface_seeds: (shape "slab"/"sphere", volume share, temperature) per
            interface run (each repeated ``replicas`` times; None: the system's); the box
            is n_cells x n_cells x ``interface_ncz`` cells (0: 2 n_cells).
        interface_steps, interface_every: sampled steps and dump stride of those runs.
        interface_melt_steps: steps the liquid of an interface run is melted (seed frozen),
            then as many cooled (0: the system's ``SystemSpec.interface_melt_steps``: 1000,
            4000 for the trimers, whose rods keep the crystal's alignment after 1000).
        chunk_steps: ``run`` commands are split into chunks of at most this many steps
            for the progress bar (0: one chunk).
    """

    system: str = "lj"
    n_cells: int = 6
    phases: tuple[str, ...] = ("crystal", "melt", "transition")
    replicas: int = 1
    equil_steps: int = 5000
    prod_steps: int = 20000
    dump_every: int = 200
    melt_steps: int = 4000
    quench_steps: int = 4000
    transition_steps: int = 40000
    seed: int = 1
    temperature: float | None = None
    pressure: float | None = None
    melt_temperature: float | None = None
    transition_temperature: float | None = None
    interface_seeds: tuple[tuple[str, float, float], ...] | None = None
    interface_ncz: int = 0
    interface_steps: int = 3000
    interface_every: int = 100
    interface_melt_steps: int = 0
    chunk_steps: int = 1000

    @property
    def spec(self) -> SystemSpec:
        try:
            return SYSTEMS[self.system]
        except KeyError:
            raise ValueError(f"Unknown system {self.system!r}; one of {sorted(SYSTEMS)}") from None

    @classmethod
    def preset(cls, name: str = "default", system: str = "lj", **overrides) -> "GeneratorConfig":
        """Named configurations.

        - ``tiny``: 3³ cells (108 LJ atoms / 108 dimers / 216 mW molecules), 1500 melting steps,
          300 equilibration + 300 production steps, dump every 50 (7 frames per trajectory);
          a few seconds.
        - ``default``: 6³ cells (864 LJ atoms / 864 dimers = 1728 atoms; trimers 4³
          cells = 512 molecules = 1536 atoms; mW 5³ cells = 1000 molecules), 5k
          equilibration + 20k production steps, dump every 200 (101 frames); LJ adds a
          40k-step transition run at T = 0.45. Minutes on one core.
        """
        phases = ("crystal", "melt", "transition") if SYSTEMS[system].transition_temperature else ("crystal", "melt")
        if name == "tiny":
            base = cls(
                system=system,
                n_cells=3,
                phases=phases,
                equil_steps=300,
                prod_steps=300,
                dump_every=50,
                melt_steps=1500,
                quench_steps=300,
                transition_steps=300,
                chunk_steps=0,
            )
        elif name == "default":
            base = cls(system=system, n_cells=SYSTEMS[system].default_cells, phases=phases)
        else:
            raise ValueError(f"Unknown preset {name!r}; 'tiny' or 'default'")
        return replace(base, **overrides)

    def runs(self) -> list[dict]:
        """One dict per LAMMPS run: trajectory name, phase, template, variables."""
        s = self.spec
        temp = s.temperature if self.temperature is None else self.temperature
        press = s.pressure if self.pressure is None else self.pressure
        tmelt = s.melt_temperature if self.melt_temperature is None else self.melt_temperature
        ttrans = s.transition_temperature if self.transition_temperature is None else self.transition_temperature
        out = []
        for phase in self.phases:
            if phase not in PHASE_LABELS:
                raise ValueError(f"Unknown phase {phase!r}; one of {sorted(PHASE_LABELS)}")
            if phase == "transition" and ttrans is None:
                raise ValueError(f"System {s.name!r} has no transition temperature; set transition_temperature.")
            if phase == "interface":
                out += self._interface_runs(press)
                continue
            for r in range(self.replicas):
                v = dict(
                    examples=str(s.template_dir),
                    ncells=self.n_cells,
                    density=s.density,
                    seed=self.seed + r,
                    temp=temp,
                    press=press,
                    dt=s.dt,
                    tdamp=s.tdamp,
                    pdamp=s.pdamp,
                    equil=self.equil_steps,
                    prod=self.prod_steps,
                    every=self.dump_every,
                )
                if phase in ("melt", "transition"):
                    v.update(tmelt=tmelt, melt=self.melt_steps, quench=self.quench_steps, density=s.melt_density)
                if phase == "transition":
                    v.update(temp=ttrans, equil=0, prod=self.transition_steps)
                template = "crystal.lmp" if phase == "crystal" else "melt.lmp"
                out.append(
                    dict(name=f"{s.name}-{phase}-{r}", phase=phase, template=s.template_dir / template, variables=v)
                )
        return out

    def _interface_runs(self, press: float) -> list[dict]:
        s = self.spec
        template = s.template_dir / "interface.lmp"
        if not template.exists():
            raise ValueError(f"System {s.name!r} has no interface protocol ({template} is missing).")
        if self.interface_melt_steps < 0:
            raise ValueError(f"interface_melt_steps = {self.interface_melt_steps}: >= 0 (0: the system's)")
        out = []
        seeds = s.interface_seeds if self.interface_seeds is None else self.interface_seeds
        for k, (shape, frac, temp) in enumerate(seeds):
            if shape not in ("slab", "sphere") or not 0.0 < frac < 1.0:
                raise ValueError(f"interface seed {(shape, frac, temp)}: shape 'slab'/'sphere', share in (0, 1)")
            for r in range(self.replicas):
                v = dict(
                    examples=str(s.template_dir),
                    ncells=self.n_cells,
                    ncz=self.interface_ncz or 2 * self.n_cells,
                    density=s.density,
                    seed=self.seed + 100 * k + r,
                    shape=shape,
                    frac=frac,
                    temp=temp,
                    press=press,
                    dt=s.dt,
                    tdamp=s.tdamp,
                    pdamp=s.pdamp,
                    equil=1000,
                    melt=self.interface_melt_steps or s.interface_melt_steps,
                    relax=100,
                    prod=self.interface_steps,
                    every=self.interface_every,
                )
                out.append(
                    dict(
                        name=f"{s.name}-interface-{shape}{frac:g}-T{temp:g}-{r}",
                        phase="interface",
                        template=template,
                        variables=v,
                    )
                )
        return out

    def total_steps(self) -> int:
        return sum(run_steps(run) for run in self.runs())


def run_steps(run: dict) -> int:
    """MD steps of one run of :meth:`GeneratorConfig.runs` (for the progress bar)."""
    v = run["variables"]
    n = int(v["equil"]) + int(v["prod"]) + int(v.get("melt", 0)) + int(v.get("quench", 0))
    if run["phase"] == "interface":  # melting, then as many steps cooling, then relaxing
        n += int(v["melt"]) + int(v["relax"])
    return n


_RUN = re.compile(r"^\s*run\s+(\S+)(.*)$")
_JUMP = re.compile(r'^\s*if\s+"([^"]+)"\s+then\s+"jump\s+SELF\s+(\S+)"\s*$')
_LABEL = re.compile(r"^\s*label\s+(\S+)\s*$")


def _logical_lines(text: str) -> list[str]:
    """LAMMPS input lines with ``&`` continuations joined and blank/comment lines dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("&"):
            buf += line[:-1] + " "
            continue
        line = buf + line
        buf = ""
        if line.split("#", 1)[0].strip():
            out.append(line)
    return out


def run_input(
    lmp, path: Path, *, chunk_steps: int = 1000, progress=None, stop_last_run=None
) -> list[tuple[int, float]]:
    """Run a LAMMPS input file command by command, splitting ``run N`` into chunks.

    Each ``run N`` becomes ``run n start S stop S+N pre yes|no post no`` pieces, so
    time-dependent fixes (the quench ramp) behave as in one run. ``progress`` (a tqdm
    bar) is advanced by the steps done. ``stop_last_run(steps_done, seconds) -> bool``,
    called after every chunk of the file's last ``run`` with the steps and wall seconds of
    that run so far, ends that run early when it returns True. A line ``if "<condition>" then "jump SELF <label>"`` skips to ``label <label>``
    when the condition holds, as LAMMPS does for its own input file. Returns (steps done,
    wall seconds) of every ``run``.
    """
    import time

    timings = []
    lines = _logical_lines(Path(path).read_text())
    last_run = max((k for k, l in enumerate(lines) if _RUN.match(l.split("#", 1)[0])), default=-1)
    skip_to = None
    for k, line in enumerate(lines):
        code = line.split("#", 1)[0]
        if skip_to is not None:
            label = _LABEL.match(code)
            if label and label.group(1) == skip_to:
                skip_to = None
            continue
        jump = _JUMP.match(code)
        if jump:  # LAMMPS's forward `jump SELF label`, which a library call cannot do
            lmp.command(
                f'if "{jump.group(1)}" then "variable latentcv_jump equal 1" else "variable latentcv_jump equal 0"'
            )
            skip_to = jump.group(2) if lmp.extract_variable("latentcv_jump") == 1 else None
            continue
        m = _RUN.match(code)
        if not m or m.group(2).strip():
            lmp.command(line)
            continue
        lmp.command(f"variable latentcv_nsteps equal {m.group(1)}")
        n = int(round(lmp.extract_variable("latentcv_nsteps")))
        start = int(lmp.extract_global("ntimestep"))
        began = time.perf_counter()
        chunk = n if chunk_steps <= 0 else max(1, chunk_steps)
        done = 0
        while True:
            c = min(chunk, n - done)
            pre = "yes" if done == 0 else "no"
            lmp.command(f"run {c} start {start} stop {start + n} pre {pre} post no")
            done += c
            if progress is not None:
                progress.update(c)
            if done >= n or (
                k == last_run and stop_last_run is not None and stop_last_run(done, time.perf_counter() - began)
            ):
                break
        timings.append((done, time.perf_counter() - began))
    return timings


def _jsonable(config: GeneratorConfig) -> dict:
    return json.loads(json.dumps(asdict(config)))


def generate(
    config: GeneratorConfig,
    outdir: str | Path,
    *,
    progress: bool = True,
    keep_logs: bool = True,
    reuse: bool = False,
) -> Dataset:
    """Run every trajectory of ``config``, write LAMMPS data + dump files, return the frames.

    Files per trajectory ``<system>-<phase>-<replica>`` in ``outdir``: ``.data`` (written
    at the start of sampling), ``.dump`` (``id [mol] type x y z``), ``.log``; plus
    ``generator.json`` (the config). With ``reuse=True`` a trajectory whose files exist
    from a run with the same config is read back instead of simulated again.

    Returns:
        Dataset of Frames (the system's length unit: "lj", or "A" for mW), labeled CRYSTAL / MELT / UNLABELED per
        phase, ``Frame.trajectory`` = the trajectory name.
    """
    from tqdm.auto import tqdm

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    runs = config.runs()
    ds = Dataset()
    stamp = outdir / "generator.json"
    same_config = stamp.exists() and json.loads(stamp.read_text()) == _jsonable(config)
    stamp.write_text(json.dumps(_jsonable(config), indent=1))
    with tqdm(
        total=config.total_steps(), disable=not progress, unit="step", desc=f"latentcv generate {config.system}"
    ) as bar:
        for run in runs:
            name = run["name"]
            v = dict(run["variables"], data=str(outdir / f"{name}.data"), dump=str(outdir / f"{name}.dump"))
            dump = Path(v["dump"])
            if reuse and same_config and dump.exists() and Path(v["data"]).exists():
                bar.update(run_steps(run))
            else:
                _run_once(run, v, dump, outdir, config, keep_logs, bar)
            label = PHASE_LABELS[run["phase"]]
            ds.extend(
                read_lammps_dump(dump, data_file=v["data"], units=config.spec.units, label=label, trajectory=name)
            )
    return ds


def _run_once(run: dict, v: dict, dump: Path, outdir: Path, config: "GeneratorConfig", keep_logs: bool, bar) -> None:
    """Run one LAMMPS protocol of :func:`generate` into ``dump`` (an old dump removed first)."""
    from latentcv.cv_models.engines import open_lammps

    if dump.exists():
        dump.unlink()  # LAMMPS appends to nothing, but never mix old frames in
    bar.set_postfix_str(run["name"])
    lmp = open_lammps(["-log", str(outdir / f"{run['name']}.log") if keep_logs else "none", "-nocite"], variables=v)
    try:
        run_input(lmp, run["template"], chunk_steps=config.chunk_steps, progress=bar)
    finally:
        lmp.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m latentcv.cv_models.generate SYSTEM OUTDIR [--preset tiny|default] [--n-cells N] ...``"""
    p = argparse.ArgumentParser(description="Generate latentcv training data with LAMMPS.")
    p.add_argument("system", choices=sorted(SYSTEMS))
    p.add_argument("outdir")
    p.add_argument("--preset", default="default", choices=["tiny", "default"])
    for f in fields(GeneratorConfig):
        if f.name in ("system", "phases") or f.type not in ("int", "float | None"):
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=int if f.type == "int" else float, default=None)
    p.add_argument("--phases", nargs="+", default=None, choices=sorted(PHASE_LABELS))
    p.add_argument("--save", default=None, help="also save all frames to this .npz (Dataset.save)")
    a = p.parse_args(argv)
    overrides = {
        f.name: getattr(a, f.name)
        for f in fields(GeneratorConfig)
        if f.name not in ("system",) and getattr(a, f.name, None) is not None
    }
    if "phases" in overrides:
        overrides["phases"] = tuple(overrides["phases"])
    cfg = GeneratorConfig.preset(a.preset, a.system, **overrides)
    ds = generate(cfg, a.outdir)
    if a.save:
        ds.save(a.save)
    print(f"{len(ds)} frames from {len(ds.trajectories)} trajectories in {a.outdir}: {asdict(cfg)}")


if __name__ == "__main__":
    main()
