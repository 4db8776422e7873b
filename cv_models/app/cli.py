"""The ``latentcv`` command line.

latentcv paths              where the plugins and the PLUMED kernel are (for inputs)
latentcv plumed ARGS...     the bundled ``plumed`` tool, with its environment set
latentcv info MODEL         what a deployable model file declares
latentcv train CONFIG       train the hierarchical autoencoder (--epochs, --set model.cutoff=1.6, ...)
latentcv export CKPT -o M   checked deployable model file from a training checkpoint
latentcv plumed-input M     a commented plumed.dat (LOAD, LATENT_CV, METAD, PRINT)
latentcv eval M TRAJ        the CV over a trajectory (C++ core): COLVAR file and plot
latentcv suggest-cutoff T   [model] cutoff / r_on (and the ten Wolde cutoff) from the g(r) of crystal frames
latentcv demo               the end-to-end demo (LAMMPS metadynamics on LATENT_CV)
latentcv compare M          metadynamics on M's CV vs PLUMED Q6 and ENERGY, over seeds
latentcv fes OUT            F(nucleus size), n*, ΔG*, CNT fit and rate from compare's runs
latentcv refine CFG CKPT    biased runs -> harvested frames -> fine-tuned CV, k rounds
latentcv walkers DAT K      plumed inputs for K walkers sharing one metadynamics bias
latentcv system-lmp SYS     a system file's LAMMPS lines (system.lmp) for examples/user/*.lmp

Each subcommand is a short ``_add_<name>`` (its arguments) and ``_cmd_<name>`` (calls the
library) pair, listed in :data:`COMMANDS`: the tools here, the model's commands (train,
export, eval, suggest-cutoff) in :mod:`.model_commands`, the metadynamics commands
(plumed-input, demo, compare, fes, refine, walkers) in :mod:`.metad_commands`, ``system-lmp``
in :mod:`.system_commands`. The work itself lives in the library modules.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from latentcv.cv_models.app.metad_commands import (
    _add_compare,
    _add_demo,
    _add_fes,
    _add_plumed_input,
    _add_refine,
    _add_walkers,
)
from latentcv.cv_models.app.model_commands import _add_eval, _add_export, _add_suggest_cutoff, _add_train
from latentcv.cv_models.app.system_commands import _add_system_lmp
from latentcv.cv_models.atomic_write import WriteError
from latentcv.cv_models.native import paths


def _add_paths(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paths", help="print the paths to write into plumed.dat / LAMMPS inputs")
    p.set_defaults(func=_cmd_paths)


def _cmd_paths(args: argparse.Namespace) -> int:
    rows = [  # (label, getter, optional: a missing one does not fail the command)
        ("PLUMED plugin (LOAD FILE=...)", paths.plumed_plugin_path, False),
        ("LAMMPS plugin (plugin load ...)", paths.lammps_plugin_path, False),
        ("LAMMPS plugin folder (LAMMPS_PLUGIN_PATH)", paths.lammps_plugin_dir, False),
        ("PLUMED kernel (PLUMED_KERNEL)", paths.plumed_kernel_path, False),
        ("plumed executable (use `latentcv plumed`)", paths.plumed_executable, False),
        ("optimised PLUMED kernel (kernel optimised)", paths.optimised_plumed_kernel, True),
    ]
    ok = True
    for label, get, optional in rows:
        try:
            value = str(get())
        except paths.MissingNativeFile as exc:
            if optional:
                value = f"not built (optional): {exc}"
            else:
                value, ok = f"MISSING: {exc}", False
        print(f"{label:45s} {value}")
    return 0 if ok else 1


def _add_plumed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plumed", help="run the bundled plumed tool (e.g. `latentcv plumed driver ...`)")
    p.add_argument("plumed_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_plumed)


def _cmd_plumed(args: argparse.Namespace) -> int:
    env = paths.plumed_environment()
    return subprocess.call([str(paths.plumed_executable()), *args.plumed_args], env=env)


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print the metadata of a deployable model file")
    p.add_argument("model")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from latentcv.export.deploy import read_metadata

    for key, value in sorted(read_metadata(args.model).items()):
        print(f"{key:20s} {value}")
    return 0


# the subcommands, in the order `latentcv --help` lists them
COMMANDS = (
    _add_paths,
    _add_plumed,
    _add_info,
    _add_train,
    _add_export,
    _add_plumed_input,
    _add_eval,
    _add_suggest_cutoff,
    _add_demo,
    _add_compare,
    _add_fes,
    _add_refine,
    _add_walkers,
    _add_system_lmp,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``latentcv`` parser: one subcommand per ``_add_*`` function of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="latentcv", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (paths.MissingNativeFile, WriteError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"latentcv {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
