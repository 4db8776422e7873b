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

import os
from pathlib import Path

from .dataset import Dataset
from .frames import Frame, parse_label
from .lammps_reader import read_lammps_data, read_lammps_dump
from .mdtraj_reader import read_mdtraj

__all__ = ["is_lammps_dump", "read_dataset", "read_frames", "read_lammps_data", "read_lammps_dump",
           "read_mdtraj", "read_trajectory"]

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
    for spec in specs:
        spec = dict(spec)
        path = spec.pop("path")
        if "label" in spec:
            try:
                spec["label"] = parse_label(spec["label"])
            except ValueError as exc:
                raise ValueError(f"trajectory {path}: {exc}") from None
        ds.extend(read_frames(path, **spec))
    names = [f.trajectory for f in ds.frames]
    if len(set(zip(names, (f.index for f in ds.frames)))) != len(names):
        raise ValueError("Two trajectories share a name; give each a distinct `trajectory`.")
    return ds
