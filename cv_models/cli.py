"""The ``latentcv`` command line.

    latentcv paths              where the plugins and the PLUMED kernel are (for inputs)
    latentcv plumed ARGS...     the bundled ``plumed`` tool, with its environment set
    latentcv info MODEL         what a deployable model file declares
    latentcv train CONFIG       train the hierarchical autoencoder
    latentcv export CKPT -o M   checked deployable model file from a training checkpoint
    latentcv plumed-input M     a commented plumed.dat (LOAD, LATENT_CV, METAD, PRINT)
    latentcv eval M TRAJ        the CV over a trajectory (C++ core): COLVAR file and plot
    latentcv demo               the end-to-end demo (LAMMPS metadynamics on LATENT_CV)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from cv_models import paths


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


def _cmd_export(args: argparse.Namespace) -> int:
    from export.from_checkpoint import export_checkpoint

    export_checkpoint(args.checkpoint, args.output, dtype=args.dtype, check_frames=args.frames,
                      config=args.config, name=args.name, length_unit=args.length_unit, unit_length=args.unit_length,
                      species_masses=[float(x) for x in args.species_masses.split(",")] if args.species_masses else None)
    return 0


def _cmd_plumed_input(args: argparse.Namespace) -> int:
    from export.plumed_input import PlumedInputOptions, plumed_input, read_metadata

    if args.atoms and args.natoms:
        raise ValueError("give --atoms or --natoms, not both")
    atoms = args.atoms
    if not atoms:
        if not args.natoms:
            raise ValueError("pass --natoms N (atoms in the simulation, all of them in the CV) or --atoms LIST "
                             "(a PLUMED atom list, e.g. 1-2048)")
        atoms = f"1-{args.natoms}"
    opts = PlumedInputOptions(atoms=atoms, cv=args.cv, temp=args.temp, height=args.height, sigma=args.sigma,
                              pace=args.pace, biasfactor=args.biasfactor, stride=args.stride, device=args.device,
                              threads=args.threads, engine=args.engine, hills=args.hills, colvar=args.colvar)
    text = plumed_input(args.model, opts)
    if args.out in (None, "-"):
        sys.stdout.write(text)
    else:
        from pathlib import Path

        Path(args.out).write_text(text)
        print(f"latentcv plumed-input: wrote {args.out} (METAD on cv.{args.cv})", file=sys.stderr)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from export.evaluate import evaluate_trajectory, plot_colvar, write_colvar

    res = evaluate_trajectory(args.model, args.trajectory, top=args.top, atoms_per_molecule=args.atoms_per_molecule,
                              data_file=args.data_file, units=args.units, length_unit=args.length_unit,
                              stride=args.stride, device=args.device, threads=args.threads,
                              progress=not args.no_progress)
    write_colvar(args.output, res)
    msg = f"latentcv eval: {len(res.frames)} frames -> {args.output}"
    if args.plot:
        plot_colvar(args.plot, res)
        msg += f", {args.plot}"
    print(msg)
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

    p = sub.add_parser("export", help="write a checked deployable model file from a training checkpoint")
    p.add_argument("checkpoint", help="checkpoint.pt written by `latentcv train`")
    p.add_argument("-o", "--output", required=True, help="model file to write (e.g. model.pt)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="dtype of the deployed model")
    p.add_argument("--frames", default=None,
                   help="frames to self-check on and estimate SIGMA from (trajectory or dataset .npz); "
                        "default: the validation blocks of the training data")
    p.add_argument("--config", default=None, help="training config (if the checkpoint's data paths do not resolve)")
    p.add_argument("--name", default=None, help="model name in the metadata (default: the run folder's name)")
    p.add_argument("--length-unit", default=None, choices=["A", "nm"],
                   help="deploy a model trained in reduced (lj) units for this physical length unit ...")
    p.add_argument("--unit-length", type=float, default=None,
                   help="... where the reduced unit sigma is this long (e.g. --length-unit A --unit-length 3.405)")
    p.add_argument("--species-masses", default=None,
                   help="mass of each species index, comma-separated (amu; reduced for lj): LATENT_CV then checks "
                        "every atom's mass against the model's species pattern")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("plumed-input", help="write a commented plumed.dat for metadynamics on a model's output")
    p.add_argument("model", help="model file written by `latentcv export`")
    p.add_argument("--atoms", default=None, help="PLUMED atom list of the CV (e.g. 1-2048)")
    p.add_argument("--natoms", type=int, default=None, help="shorthand for --atoms 1-N")
    p.add_argument("--cv", default="proj", help="output to bias (default: proj)")
    p.add_argument("--temp", type=float, default=None, help="temperature (K; reduced for lj models)")
    p.add_argument("--height", type=float, default=None, help="hill height (default: 1 kT)")
    p.add_argument("--sigma", type=float, default=None, help="hill width (default: the model's sigma_hint)")
    p.add_argument("--pace", type=int, default=500, help="METAD PACE (default 500)")
    p.add_argument("--biasfactor", type=float, default=30.0, help="METAD BIASFACTOR (default 30)")
    p.add_argument("--stride", type=int, default=500, help="PRINT STRIDE (default 500)")
    p.add_argument("--device", default="cpu", help="LATENT_CV DEVICE: cpu, cuda, auto (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="LATENT_CV THREADS (default 1)")
    p.add_argument("--engine", default="lammps", choices=["lammps", "driver"],
                   help="lammps (fix plumed) or driver (`plumed driver`: adds UNITS NATURAL for lj models)")
    p.add_argument("--hills", default="HILLS", help="METAD FILE (default HILLS)")
    p.add_argument("--colvar", default="COLVAR", help="PRINT FILE (default COLVAR)")
    p.add_argument("--out", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=_cmd_plumed_input)

    p = sub.add_parser("eval", help="evaluate a model over a trajectory (C++ core): COLVAR file and plot")
    p.add_argument("model", help="model file written by `latentcv export`")
    p.add_argument("trajectory", help="LAMMPS dump, or any format mdtraj reads")
    p.add_argument("--top", default=None, help="topology for formats without one (mdtraj)")
    p.add_argument("--atoms-per-molecule", type=int, default=None, help="molecule size (default: the model's)")
    p.add_argument("--data-file", default=None, help="LAMMPS data file of the run (molecules from its bonds)")
    p.add_argument("--units", default=None, help="LAMMPS units style of a dump: lj, real, metal, nano")
    p.add_argument("--length-unit", default=None, choices=["nm", "A", "lj"],
                   help="unit of the numbers in an mdtraj-read file (default nm)")
    p.add_argument("--stride", type=int, default=1, help="every n-th frame")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("-o", "--output", default="colvar.dat", help="COLVAR-style output (default colvar.dat)")
    p.add_argument("--plot", default=None, help="PNG of every output vs frame")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)

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
