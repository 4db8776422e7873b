"""``latentcv system-lmp``: a system file's LAMMPS lines (:meth:`SystemFile.lammps_commands`)
written to a file, the ``system.lmp`` that the protocols ``examples/user/*.lmp`` include
(``-var system system.lmp``) to make crystal, melt and interface trajectories of the user's
own system (docs/tutorial.md, "Training trajectories of your own system").

    latentcv system-lmp my_system.toml -o system.lmp --data-file crystal.data

``--data-file`` replaces the system file's ``data_file``, so that one system file serves
the crystal's data file (the training runs start from it) and the melt's (compare, refine).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from latentcv.cv_models.atomic_write import write_atomically
from latentcv.cv_models.system_file import SystemFile, load_system_file

USAGE = "latentcv system-lmp my_system.toml -o system.lmp [--data-file crystal.data]"


def system_with_data_file(system_file: str | Path, data_file: str | Path | None = None) -> SystemFile:
    """The checked :class:`SystemFile` of ``system_file``, its ``data_file`` replaced by
    ``data_file`` (relative to the current folder) when given; errors name the fix."""
    path = Path(system_file).resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"system file {path} not found: give the TOML file that describes your system "
            f"(docs/tutorial.md 'Your own system'): {USAGE}"
        )
    if data_file is None:
        return load_system_file(path)
    data = Path(data_file).resolve()
    if not data.is_file():
        raise FileNotFoundError(
            f"--data-file {data} not found: give your crystal's LAMMPS data file (write_data), "
            "relative to the current folder"
        )
    return load_system_file(path, data)


def write_system_lmp(system: SystemFile, out: str | Path) -> Path:
    """Write the LAMMPS lines of ``system`` (:meth:`SystemFile.lammps_commands`) to ``out``."""
    out = Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"folder {out.parent.resolve()} of -o {out} not found: create it first (mkdir -p)")
    return write_atomically(out, system.lammps_commands().encode(), "system lines")


def _add_system_lmp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "system-lmp",
        help="write a system file's LAMMPS lines (system.lmp) for examples/user/{crystal,melt,interface,metad}.lmp",
    )
    p.add_argument("system_file", help="TOML system file of your system (docs/tutorial.md 'Your own system')")
    p.add_argument("-o", "--out", default="system.lmp", help="file written (default system.lmp)")
    p.add_argument(
        "--data-file",
        default=None,
        help="LAMMPS data file read instead of the system file's data_file (e.g. your crystal's)",
    )
    p.set_defaults(func=_cmd_system_lmp)


def _cmd_system_lmp(args: argparse.Namespace) -> int:
    system = system_with_data_file(args.system_file, args.data_file)
    out = write_system_lmp(system, args.out)
    print(f"{out}: {system.name}, {system.n_atoms} atoms of {system.data_file} ({system.units} units)")
    return 0
