"""The ``latentcv`` command line.

    latentcv paths              where the plugins and the PLUMED kernel are (for inputs)
    latentcv plumed ARGS...     the bundled ``plumed`` tool, with its environment set
    latentcv info MODEL         what a deployable model file declares
    latentcv train CONFIG       train the hierarchical autoencoder
    latentcv demo               the end-to-end demo (LAMMPS metadynamics on LATENT_CV)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from cv_models import paths


def _cmd_paths(args: argparse.Namespace) -> int:
    rows = [
        ("PLUMED plugin (LOAD FILE=...)", lambda: paths.plumed_plugin_path()),
        ("LAMMPS plugin (plugin load ...)", lambda: paths.lammps_plugin_path()),
        ("LAMMPS plugin folder (LAMMPS_PLUGIN_PATH)", lambda: paths.lammps_plugin_dir()),
        ("PLUMED kernel (PLUMED_KERNEL)", lambda: paths.plumed_kernel_path()),
        ("plumed executable (use `latentcv plumed`)", lambda: paths.plumed_executable()),
    ]
    ok = True
    for label, get in rows:
        try:
            value = str(get())
        except paths.MissingNativeFile as exc:
            value, ok = f"MISSING: {exc}", False
        print(f"{label:45s} {value}")
    return 0 if ok else 1


def _cmd_plumed(args: argparse.Namespace) -> int:
    env = paths.plumed_environment()
    return subprocess.call([str(paths.plumed_executable()), *args.plumed_args], env=env)


def _cmd_info(args: argparse.Namespace) -> int:
    from cv_models._lib import _core

    model = _core.Model(args.model, warmup=False)
    for key, value in sorted(model.metadata.items()):
        print(f"{key:20s} {value}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from cv_models.training import train_from_config

    out = train_from_config(args.config)
    print(f"checkpoint: {out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from cv_models.demo import run_demo

    run_demo(args.out, steps=args.steps)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentcv", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("paths", help="print the paths to write into plumed.dat / LAMMPS inputs")
    p.set_defaults(func=_cmd_paths)

    p = sub.add_parser("plumed", help="run the bundled plumed tool (e.g. `latentcv plumed driver ...`)")
    p.add_argument("plumed_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_plumed)

    p = sub.add_parser("info", help="print the metadata of a deployable model file")
    p.add_argument("model")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="train the hierarchical autoencoder from a config file")
    p.add_argument("config")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("demo", help="run the end-to-end demo")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--steps", type=int, default=None, help="MD steps (default: the demo's own)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (paths.MissingNativeFile, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"latentcv {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
