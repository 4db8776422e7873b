"""Your own system, described in a TOML file, for ``latentcv compare --system-file`` and
``latentcv refine --system-file`` (docs/tutorial.md, "Your own system").

The embedded systems (:data:`~latentcv.cv_models.systems.SYSTEMS`) build their box from a
lattice in ``examples/<system>/system.lmp``; a user's system starts from their own LAMMPS
data file and force field. :func:`load_system_file` reads and checks the file (errors name
the key and the fix); :meth:`SystemFile.lammps_commands` writes the LAMMPS lines that play
the part of an embedded ``system.lmp`` (units, ``read_data``, the force field, the state
point as index variables) for the protocol ``examples/user/metad.lmp``. :func:`metad_system`
gives :class:`MetadSystem`, what a metadynamics run
(:func:`~latentcv.cv_models.app.metad_run.run_metadynamics`) needs of either kind of system.

    # my_system.toml: every number in the LAMMPS units style of `units`
    data_file = "argon.data"          # relative to this file
    units = "real"
    force_field = '''
    pair_style lj/cut 8.5125
    pair_coeff 1 1 0.2381 3.405
    '''
    temperature = 69.5                # K
    pressure = 413.0                  # atm
    timestep = 5.0                    # fs
    judge = "ten_wolde"
    judge_cutoff = 5.1                # Angstrom
    melt_temperature = 240.0          # or: already_melt = true
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from latentcv.cv_models.systems import EXAMPLES, METAD_DEFAULTS, SYSTEMS

__all__ = [
    "SystemFile",
    "load_system_file",
    "data_file_atoms",
    "MetadSystem",
    "metad_system",
    "JUDGES",
    "SYSTEM_FILE_UNITS",
]

JUDGES = ("ten_wolde", "local_p2", "chill_plus")
# LAMMPS units styles whose lengths a latentcv model can hold (lj: sigma; real, metal: A; nano: nm)
SYSTEM_FILE_UNITS = ("lj", "real", "metal", "nano")
_REQUIRED = ("data_file", "units", "temperature", "timestep", "judge", "judge_cutoff")
_MOLECULAR_STYLES = ("bond", "angle", "molecular", "full", "template")  # atom styles with molecule IDs


@dataclass(frozen=True)
class SystemFile:
    """One user system; every number in the LAMMPS units style ``units``.

    Attributes:
        path: the system file (relative paths in it are relative to its folder).
        data_file: LAMMPS data file of the starting configuration (``read_data``).
        units: LAMMPS units style: "lj", "real" (Å, fs, kcal/mol, K, atm), "metal" (Å, ps,
            eV, K, bar) or "nano".
        name: short name for reports (default: the file's stem).
        atom_style: LAMMPS ``atom_style`` of the data file ("atomic", "bond", "full", ...).
        settings: LAMMPS lines before ``read_data``: the styles its Coeffs sections need
            (``pair_style``, ``bond_style``, ...; a ``write_data`` file has Pair Coeffs).
        force_field: LAMMPS lines after ``read_data``: the force field and settings
            (pair_style, pair_coeff, bonds, neighbor, ...); ``${sysdir}`` there is the system
            file's folder.
        force_field_file: or a file of such lines (included); exactly one of the two.
        temperature: state point (K; reduced for lj). pressure: (atm real, bar metal).
        timestep: MD time step (fs real, ps metal, tau lj).
        tdamp, pdamp: Nosé–Hoover thermostat/barostat damping times; 0 = 100 / 1000 time steps.
        atoms_per_molecule: atoms of each molecule (the data file's molecule IDs: a molecular
            ``atom_style``; 1 = atoms).
        judge: the independent crystal judge: "ten_wolde", "local_p2" (orientationally
            ordered molecules) or "chill_plus" (ice, one site per water).
        judge_cutoff: neighbour cutoff of the judge, in the system's length unit.
        melt_temperature: melt the data file's configuration at this temperature (constant
            volume, ``melt_steps``), then cool it to ``temperature`` at ``pressure``
            (``quench_steps``); unused with ``already_melt``.
        melt_steps, quench_steps, equil_steps: steps of melting, cooling, and equilibration
            at the state point before the bias starts.
        already_melt: the data file is already the melt at the state point: no melting.
    """

    path: Path
    data_file: Path
    units: str
    temperature: float
    timestep: float
    judge: str
    judge_cutoff: float
    name: str = ""
    atom_style: str = "atomic"
    settings: str = ""
    force_field: str = ""
    force_field_file: str = ""
    pressure: float = 1.0
    tdamp: float = 0.0
    pdamp: float = 0.0
    atoms_per_molecule: int = 1
    melt_temperature: float = 0.0
    melt_steps: int = 2000
    quench_steps: int = 2000
    equil_steps: int = 1000
    already_melt: bool = False

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def n_atoms(self) -> int:
        return data_file_atoms(self.data_file)

    @property
    def n_molecules(self) -> int:
        return self.n_atoms // self.atoms_per_molecule

    @property
    def length_unit(self) -> str:
        """latentcv's length unit of the system's frames ("lj", "A" or "nm")."""
        from latentcv.cv_models.units import lammps_length_unit

        return lammps_length_unit(self.units)

    def prep_steps(self) -> dict[str, int]:
        """Steps of the preparation runs of ``examples/user/metad.lmp``: melt, quench, equil."""
        melt = 0 if self.already_melt else self.melt_steps
        quench = 0 if self.already_melt else self.quench_steps
        return {"melt": melt, "quench": quench, "equil": self.equil_steps}

    def validate(self) -> "SystemFile":
        """Checks, each error naming the key and the fix; returns self."""
        _check_choices(self)
        _check_numbers(self)
        _check_files(self)
        n = self.n_atoms
        if n % self.atoms_per_molecule:
            raise ValueError(
                f"{self.path}: atoms_per_molecule = {self.atoms_per_molecule} does not divide the "
                f"{n} atoms of {self.data_file}: set it to the atoms of one molecule"
            )
        return self

    def lammps_commands(self) -> str:
        """The LAMMPS lines that build the system (the part of an embedded ``system.lmp``):
        the state point as ``index`` variables (a ``-var`` overrides them), units,
        ``read_data``, the force field, the time step."""
        prep = self.prep_steps()
        tmelt = self.temperature if self.already_melt else self.melt_temperature
        variables = {
            "temp": self.temperature,
            "press": self.pressure,
            "dt": self.timestep,
            "tdamp": self.tdamp or 100 * self.timestep,
            "pdamp": self.pdamp or 1000 * self.timestep,
            "tmelt": tmelt,
            **prep,
        }
        columns = "id mol type x y z" if self.atoms_per_molecule > 1 else "id type x y z"
        force_field = f"include {self.folder / self.force_field_file}" if self.force_field_file else self.force_field
        lines = [
            f"# latentcv: the system of {self.path} (written by latentcv: edit the system file, not this)",
            f'variable sysdir string "{self.folder}"',
            *(f"variable {k:8s} index {v:g}" for k, v in variables.items()),
            f'variable columns string "{columns}"',
            f"units           {self.units}",
            f"atom_style      {self.atom_style}",
            self.settings.strip(),
            "variable        resume index no",
            f'if "${{resume}} == yes" then "read_restart ${{restartfile}}" else "read_data {self.data_file}"',
            force_field.strip(),
            "timestep        ${dt}",
            "thermo_style    custom step temp press density pe",
        ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MetadSystem:
    """What a metadynamics run needs of its system, embedded or a user's system file.

    Attributes:
        name: the system's name (reports).
        input_file: the LAMMPS protocol (``examples/<system>/metad.lmp``, ``examples/user/metad.lmp``).
        units: LAMMPS units style (of the dump the judge reads).
        temperature, pressure: the state point (K and atm for real, K and bar for metal; reduced for lj).
        criterion: the judge, a key of ``JUDGES``; judge_cutoff: its cutoff (length unit).
        n_atoms, n_molecules: of the run's box.
        variables: the system's ``-var`` values of ``input_file``.
        commands: LAMMPS lines written to ``<run>/system.lmp`` and included (system files; "": none).
        prep_steps: the input's own melt/quench/equil steps (the progress bar's total).
        bias_stride: the METAD STRIDE that suits the system's time step (``SystemSpec.bias_stride``;
            a system file: ``METAD_DEFAULTS.bias_stride``).
        crystal_threshold: the judged share above which the box counts as crystallised
            (``SystemSpec.crystal_threshold``; a system file: 0.8).
        cluster_link: distance joining crystalline molecules into one cluster for the
            largest-nucleus size and PLUMED's largest-cluster CV (``SystemSpec.cluster_link``;
            0: the judge's cutoff).
        cluster_solid_q6: (D_0, D_MAX) of the CUBIC switch on LOCAL_Q6 that makes a molecule
            solid-like for PLUMED's largest-cluster CV (``SystemSpec.cluster_solid_q6``).
    """

    name: str
    input_file: Path
    units: str
    temperature: float
    pressure: float
    criterion: str
    judge_cutoff: float
    n_atoms: int
    n_molecules: int
    variables: dict = field(default_factory=dict)
    commands: str = ""
    prep_steps: dict = field(default_factory=dict)
    bias_stride: int = METAD_DEFAULTS.bias_stride
    crystal_threshold: float = 0.8
    cluster_link: float = 0.0
    cluster_solid_q6: tuple[float, float] = (5.0, 7.0)


def metad_system(system: str | SystemFile, cells: int = 4) -> MetadSystem:
    """The :class:`MetadSystem` of an embedded system (a key of ``SYSTEMS``; ``cells`` lattice
    cells per edge) or of a user's system file (its data file's box)."""
    if isinstance(system, SystemFile):
        return MetadSystem(
            system.name,
            EXAMPLES / "user" / "metad.lmp",
            system.units,
            system.temperature,
            system.pressure,
            system.judge,
            system.judge_cutoff,
            system.n_atoms,
            system.n_molecules,
            commands=system.lammps_commands(),
            prep_steps=system.prep_steps(),
        )
    if system not in SYSTEMS:
        raise ValueError(
            f"unknown system {system!r}: one of {', '.join(SYSTEMS)}; "
            "or describe your own in a system file (--system-file, docs/tutorial.md 'Your own system')"
        )
    spec = SYSTEMS[system]
    input_file = spec.template_dir / "metad.lmp"
    text = input_file.read_text() if input_file.exists() else ""
    own = {k: int(v) for k, v in re.findall(r"^variable\s+(melt|quench|equil)\s+index\s+(\d+)", text, re.M)}
    n_molecules = spec.n_molecules(cells)
    return MetadSystem(
        spec.name,
        input_file,
        spec.units,
        spec.temperature,
        spec.pressure,
        spec.crystal_criterion,
        spec.tenwolde_cutoff,
        n_molecules * spec.atoms_per_molecule,
        n_molecules,
        variables={"examples": spec.template_dir, "ncells": cells},
        prep_steps=own,
        bias_stride=spec.bias_stride,
        crystal_threshold=spec.crystal_threshold,
        cluster_link=spec.cluster_link,
        cluster_solid_q6=spec.cluster_solid_q6,
    )


def load_system_file(path: str | Path, data_file: str | Path | None = None) -> SystemFile:
    """Read and check a system file (TOML; keys: :class:`SystemFile`'s attributes);
    ``data_file`` (relative to the current folder) replaces its ``data_file``."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"system file {path} not found: pass --system-file with a TOML file (docs/tutorial.md)")
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    known = {f.name: f for f in fields(SystemFile) if f.name != "path"}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}: the keys are {', '.join(known)}")
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}: a system file needs {', '.join(_REQUIRED)}")
    for key, value in table.items():
        _check_type(path, key, value, known[key].type)
    table["data_file"] = Path(data_file).resolve() if data_file is not None else path.parent / table["data_file"]
    table.setdefault("name", path.stem)
    return SystemFile(path=path, **table).validate()


def data_file_atoms(path: Path) -> int:
    """The atom count of a LAMMPS data file's header (``N atoms``)."""
    with open(path) as f:
        next(f, None)  # the title line
        for line in f:
            m = re.match(r"\s*(\d+)\s+atoms\b", line)
            if m:
                return int(m.group(1))
            if re.match(r"\s*[A-Z][a-z]", line):  # the first section: no count in the header
                break
    raise ValueError(f"{path}: no 'N atoms' line in the header: is it a LAMMPS data file (write_data)?")


_TYPES = {"str": (str,), "float": (int, float), "int": (int,), "bool": (bool,), "Path": (str,)}
_KINDS = {
    "str": "a string",
    "float": "a number",
    "int": "a whole number",
    "bool": "true or false",
    "Path": "a file name",
}


def _check_type(path: Path, key: str, value, annotation: str) -> None:
    ok = _TYPES[annotation]
    if not isinstance(value, ok) or (bool not in ok and isinstance(value, bool)):
        raise ValueError(f"{path}: {key} = {value!r} must be {_KINDS[annotation]}")


def _check_choices(s: SystemFile) -> None:
    if s.units not in SYSTEM_FILE_UNITS:
        raise ValueError(f"{s.path}: units = {s.units!r}: one of {', '.join(SYSTEM_FILE_UNITS)} (LAMMPS units style)")
    if s.judge not in JUDGES:
        raise ValueError(f"{s.path}: judge = {s.judge!r}: one of {', '.join(JUDGES)}")
    if s.atoms_per_molecule > 1 and not set(s.atom_style.split()) & set(_MOLECULAR_STYLES):
        raise ValueError(
            f"{s.path}: atoms_per_molecule = {s.atoms_per_molecule} needs molecule IDs, which "
            f"atom_style = {s.atom_style!r} has not: one of {', '.join(_MOLECULAR_STYLES)} (or a hybrid with one)"
        )
    if bool(s.force_field.strip()) == bool(s.force_field_file):
        raise ValueError(
            f"{s.path}: give exactly one of force_field (LAMMPS lines: pair_style, pair_coeff, ...) "
            "and force_field_file (a file of them)"
        )


def _check_numbers(s: SystemFile) -> None:
    for key in ("temperature", "timestep", "judge_cutoff", "atoms_per_molecule"):
        if not getattr(s, key) > 0:
            raise ValueError(f"{s.path}: {key} = {getattr(s, key)!r} must be > 0")
    for key in ("pressure", "tdamp", "pdamp", "melt_steps", "quench_steps", "equil_steps"):
        if getattr(s, key) < 0:
            raise ValueError(f"{s.path}: {key} = {getattr(s, key)!r} must be >= 0")
    if not s.already_melt and not (s.melt_temperature > s.temperature and s.melt_steps > 0):
        raise ValueError(
            f"{s.path}: melt_temperature = {s.melt_temperature!r} with melt_steps = {s.melt_steps}: "
            f"set melt_temperature above temperature ({s.temperature:g}) and melt_steps > 0 to melt "
            "the data file's configuration, or already_melt = true if it is already a melt"
        )


def _check_files(s: SystemFile) -> None:
    if not s.data_file.is_file():
        raise ValueError(f"{s.path}: data_file = {str(s.data_file)!r} not found (relative to the system file's folder)")
    if s.force_field_file and not (s.folder / s.force_field_file).is_file():
        raise ValueError(f"{s.path}: force_field_file = {s.force_field_file!r} not found (relative to its folder)")
