"""Read trajectories into :class:`Frame` lists: the one entry point over the two readers.

- :func:`~latentcv.cv_models.data.lammps_reader.read_lammps_dump` (LAMMPS text dumps,
  molecules from a data file's bonds, a ``mol`` column or a count) for ``*.dump``,
  ``*.lammpsdump``, ``*.lammpstrj`` and ``dump.*`` without a topology;
- :func:`~latentcv.cv_models.data.mdtraj_reader.read_mdtraj` (DCD, XTC, TRR, PDB, ...)
  for everything else.

Every frame returned has contiguous molecules with one atom pattern, molecules made
whole across the periodic boundaries, the caller's phase label and a trajectory name.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

from ..units import LAMMPS_LENGTH_UNIT, MODEL_LENGTH_UNITS
from .dataset import Dataset
from .frames import Frame, parse_label
from .lammps_reader import read_lammps_data, read_lammps_dump
from .mdtraj_reader import read_mdtraj

__all__ = [
    "DUMP_KEYS",
    "MDTRAJ_KEYS",
    "check_trajectory_table",
    "is_lammps_dump",
    "read_dataset",
    "read_frames",
    "read_lammps_data",
    "read_lammps_dump",
    "read_mdtraj",
    "read_trajectory",
]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_name(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_label(v: Any) -> bool:
    try:
        parse_label(v)
        return True
    except ValueError:
        return False


#: What a ``[data] trajectories`` table key accepts: {key: (test, what is valid)}.
_TABLE_RULES: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "path": (_is_name, "a file name (string)"),
    "label": (_is_label, '"crystal", "melt", "unlabeled" (any case) or 1, 0, -1'),
    "trajectory": (_is_name, "a non-empty name (string)"),
    "stride": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "data_file": (_is_name, "a LAMMPS data file name (string)"),
    "atoms_per_molecule": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "units": (lambda v: v in LAMMPS_LENGTH_UNIT, f"a LAMMPS units style, one of {', '.join(LAMMPS_LENGTH_UNIT)}"),
    "start": (_is_int, "an integer (a Python slice bound)"),
    "stop": (_is_int, "an integer (a Python slice bound)"),
    "top": (_is_name, "a topology file name (string)"),
    "molecules": (
        lambda v: v in ("residues", "bonds") or (_is_int(v) and v >= 1),
        '"residues", "bonds" or an integer >= 1 (atoms per molecule)',
    ),
    "length_unit": (lambda v: v in MODEL_LENGTH_UNITS, f"one of {', '.join(MODEL_LENGTH_UNITS)}"),
    "species_map": (
        lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_int(i) and i >= 0 for k, i in v.items()),
        "a table {element = species index >= 0}",
    ),
}
#: The keys of a trajectory table read as a LAMMPS dump (:func:`read_lammps_dump`) and
#: with mdtraj (:func:`read_mdtraj`); tests/test_input_validation.py holds them to the signatures.
DUMP_KEYS = ("path", "label", "trajectory", "stride", "data_file", "atoms_per_molecule", "units", "start", "stop")
MDTRAJ_KEYS = ("path", "label", "trajectory", "stride", "top", "molecules", "length_unit", "species_map")


def check_trajectory_table(table: Any, where: str) -> None:
    """ValueError naming ``where.key`` (e.g. ``data.trajectories[1].units``) unless ``table``
    is a table with ``path`` and only the keys its reader takes, each of a valid value."""
    if not isinstance(table, dict) or "path" not in table:
        raise ValueError(f"{where}: a table with at least `path` is required, got {table!r:.80}")
    dump = isinstance(table.get("path"), str) and is_lammps_dump(table["path"], table.get("top"))
    keys, reader = (DUMP_KEYS, "a LAMMPS dump") if dump else (MDTRAJ_KEYS, "an mdtraj-read file")
    of = f" of {table['path']}" if isinstance(table.get("path"), str) else ""
    for key, value in table.items():
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if key in _TABLE_RULES:
                hint = " (it applies to " + ("mdtraj-read files" if dump else "LAMMPS dumps") + ")"
            raise ValueError(f"unknown key {where}.{key}{of}{hint}; the table of {reader} takes {', '.join(keys)}")
        test, valid = _TABLE_RULES[key]
        if not test(value):
            raise ValueError(f"{where}.{key}{of}: {value!r:.80} is not valid; expected {valid}")


_DUMP_SUFFIXES = (".dump", ".lammpsdump", ".lammpstrj")


def is_lammps_dump(path: str | os.PathLike, top: str | os.PathLike | None = None) -> bool:
    """Whether :func:`read_frames` reads ``path`` as a LAMMPS text dump (``*.dump``,
    ``*.lammpsdump``, ``*.lammpstrj``, ``dump.*``, and no ``top``) rather than with mdtraj."""
    name = Path(path).name.lower()
    return top is None and (name.endswith(_DUMP_SUFFIXES) or name.startswith("dump"))


def read_frames(path: str | os.PathLike, *, top: str | os.PathLike | None = None, **kwargs) -> list[Frame]:
    """Dispatch: LAMMPS dumps (see :func:`is_lammps_dump`) go to :func:`read_lammps_dump`,
    everything else to :func:`read_mdtraj`."""
    if is_lammps_dump(path, top):
        return read_lammps_dump(path, **kwargs)
    return read_mdtraj(path, top, **kwargs)


def read_trajectory(
    path: str | os.PathLike,
    *,
    top: str | os.PathLike | None = None,
    atoms_per_molecule: int | None = None,
    data_file: str | os.PathLike | None = None,
    units: str = "lj",
    length_unit: str = "nm",
    stride: int = 1,
) -> list[Frame]:
    """:func:`read_frames` with the trajectory options of the command line (``latentcv
    eval``, ``latentcv suggest-cutoff``): ``--top``, ``--atoms-per-molecule``,
    ``--data-file``, ``--units`` (dumps), ``--length-unit`` (mdtraj), ``--stride``.

    Molecules of an mdtraj-read file: ``atoms_per_molecule`` atoms each, else its residues.
    Raises FileNotFoundError / ValueError naming the options to fix.
    """
    t = Path(path)
    if not t.exists():
        raise FileNotFoundError(f"trajectory {t} does not exist")
    kwargs: dict[str, object]
    if is_lammps_dump(t, top):
        kwargs = {"units": units, "stride": stride, "data_file": data_file, "atoms_per_molecule": atoms_per_molecule}
    else:
        kwargs = {"stride": stride, "length_unit": length_unit, "molecules": atoms_per_molecule or "residues"}
    try:
        return read_frames(t, top=top, **kwargs)
    except ValueError as exc:
        what = f" as molecules of {atoms_per_molecule} atoms" if atoms_per_molecule else ""
        raise ValueError(f"cannot read {t}{what}: {exc}. Check --atoms-per-molecule / --data-file / --top") from exc


def read_dataset(specs: list[dict]) -> Dataset:
    """Read several trajectories into one :class:`Dataset`.

    Args:
        specs: one dict per trajectory with ``path`` and the keyword arguments of
            :func:`read_frames` (``label`` = "crystal" / "melt" / "unlabeled" or 1 / 0 / -1,
            ``trajectory``, ``data_file``, ``top``, ...).
    """
    ds = Dataset()
    for k, spec in enumerate(specs):
        where = f"data.trajectories[{k}]"
        check_trajectory_table(spec, where)
        spec = dict(spec)
        path = spec.pop("path")
        for key in ("path", "data_file", "top"):
            name = path if key == "path" else spec.get(key)
            if name is not None and not Path(name).is_file():
                raise FileNotFoundError(
                    f"{where}.{key}: {name} does not exist or is not a file (relative paths "
                    "are relative to the config file)"
                )
        label = spec.get("label", "unlabeled")
        if "label" in spec:
            spec["label"] = parse_label(spec["label"])
        frames = read_frames(path, **spec)
        if not frames:
            chosen = {key: spec[key] for key in ("start", "stop", "stride") if key in spec}
            raise ValueError(
                f"{where} ({path}, label {label}): no frames"
                f"{f' selected by {chosen}' if chosen else ' in the file'}; every trajectory the "
                "config names must give frames (remove the table or fix the file)"
            )
        ds.extend(frames)
    names = [f.trajectory for f in ds.frames]
    if len(set(zip(names, (f.index for f in ds.frames)))) != len(names):
        raise ValueError("Two trajectories share a name; give each a distinct `trajectory`.")
    return ds
