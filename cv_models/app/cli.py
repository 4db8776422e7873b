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
latentcv refine CFG CKPT    biased runs -> harvested frames -> fine-tuned CV, k rounds
latentcv walkers DAT K      plumed inputs for K walkers sharing one metadynamics bias

The module is over 400 lines because it is the table of the command line: one short
``_add_<name>`` (arguments) and ``_cmd_<name>`` (calls the library) pair per subcommand,
listed in :data:`COMMANDS`; the work itself lives in the library modules.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from latentcv.cv_models.atomic_write import WriteError
from latentcv.cv_models.native import paths
from latentcv.cv_models.systems import METAD_DEFAULTS
from latentcv.cv_models.units import MODEL_LENGTH_UNITS, PHYSICAL_MODEL_LENGTH_UNITS


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


def _add_train(sub: argparse._SubParsersAction) -> None:
    from latentcv.cv_models.app.train_command import add_train_arguments

    p = sub.add_parser("train", help="train the hierarchical autoencoder from a config file (docs/config.md)")
    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from latentcv.cv_models.app.train_command import run_train_command

    run_train_command(args)
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a checked deployable model file from a training checkpoint")
    p.add_argument("checkpoint", help="checkpoint.pt written by `latentcv train`")
    p.add_argument("-o", "--output", required=True, help="model file to write (e.g. model.pt)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="dtype of the deployed model")
    p.add_argument(
        "--format",
        default="torchscript",
        choices=["torchscript", "aoti"],
        help="torchscript (model.pt, default) or aoti: an AOTInductor package (model.pt2, compiled "
        "by a C++ compiler at export, CPU; docs/export.md)",
    )
    p.add_argument(
        "--frames",
        default=None,
        help="frames to self-check on and estimate SIGMA from (trajectory or dataset .npz); "
        "default: the validation blocks of the training data",
    )
    p.add_argument("--config", default=None, help="training config (if the checkpoint's data paths do not resolve)")
    p.add_argument("--name", default=None, help="model name in the metadata (default: the run folder's name)")
    p.add_argument(
        "--length-unit",
        default=None,
        choices=list(PHYSICAL_MODEL_LENGTH_UNITS),
        help="deploy a model trained in reduced (lj) units for this physical length unit ...",
    )
    p.add_argument(
        "--unit-length",
        type=float,
        default=None,
        help="... where the reduced unit sigma is this long (e.g. --length-unit A --unit-length 3.405)",
    )
    p.add_argument(
        "--species-masses",
        default=None,
        help="mass of each species index, comma-separated (amu; reduced for lj): LATENT_CV then checks "
        "every atom's mass against the model's species pattern",
    )
    p.add_argument(
        "--nucleus",
        default=None,
        metavar="FRACTION,WIDTH",
        help="n_nucleus's neighbour fraction and step width (default: the checkpoint's [model] "
        "nucleus_fraction, nucleus_width; not trained, so free to change here)",
    )
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from latentcv.export.deploy import parse_floats
    from latentcv.export.from_checkpoint import export_checkpoint

    export_checkpoint(
        args.checkpoint,
        args.output,
        dtype=args.dtype,
        check_frames=args.frames,
        config=args.config,
        name=args.name,
        length_unit=args.length_unit,
        unit_length=args.unit_length,
        species_masses=parse_floats(args.species_masses) if args.species_masses else None,
        nucleus=_nucleus_option(args.nucleus),
        model_format=args.format,
    )
    return 0


def _nucleus_option(text: str | None) -> tuple[float, float] | None:
    """``--nucleus FRACTION,WIDTH`` as two floats (the layer checks their ranges)."""
    if text is None:
        return None
    from latentcv.export.deploy import parse_floats

    try:
        values = parse_floats(text)
    except ValueError:
        values = []
    if len(values) != 2:
        raise ValueError(f"--nucleus {text!r}: give two numbers FRACTION,WIDTH, e.g. --nucleus 0.5,0.05")
    return values[0], values[1]


def _add_metad_options(p: argparse.ArgumentParser, stride_alias: bool = False) -> None:
    """--pace, --biasfactor and --bias-stride, defaulting to latentcv's METAD_DEFAULTS
    (plumed-input, compare; ``stride_alias``: compare's old name --stride)."""
    p.add_argument("--pace", type=int, default=METAD_DEFAULTS.pace, help=f"METAD PACE (default {METAD_DEFAULTS.pace})")
    p.add_argument(
        "--biasfactor",
        type=float,
        default=METAD_DEFAULTS.biasfactor,
        help=f"METAD BIASFACTOR (default {METAD_DEFAULTS.biasfactor:g})",
    )
    names = ("--bias-stride", "--stride") if stride_alias else ("--bias-stride",)
    p.add_argument(
        *names,
        dest="bias_stride",
        type=int,
        default=METAD_DEFAULTS.bias_stride,
        help=f"METAD STRIDE: multiple time stepping, the CV and its forces every N steps (default "
        f"{METAD_DEFAULTS.bias_stride}; 1 = every step; docs/export.md 'Bias STRIDE')",
    )


def _add_plumed_input(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plumed-input", help="write a commented plumed.dat for metadynamics on a model's output")
    p.add_argument("model", help="model file written by `latentcv export`")
    p.add_argument("--atoms", default=None, help="PLUMED atom list of the CV (e.g. 1-2048)")
    p.add_argument("--natoms", type=int, default=None, help="shorthand for --atoms 1-N")
    p.add_argument(
        "--cv",
        default="n_crystal",
        help="output to bias (default: n_crystal, the learned count of crystalline molecules)",
    )
    p.add_argument("--temp", type=float, default=None, help="temperature (K; reduced for lj models)")
    p.add_argument("--height", type=float, default=None, help="hill height (default: 1 kT)")
    p.add_argument("--sigma", type=float, default=None, help="hill width (default: the model's sigma_hint)")
    _add_metad_options(p)
    p.add_argument(
        "--print-stride",
        "--stride",
        dest="stride",
        type=int,
        default=500,
        help="PRINT STRIDE of COLVAR (default 500; --stride is the old name)",
    )
    p.add_argument("--device", default="cpu", help="LATENT_CV DEVICE: cpu, cuda, auto (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="LATENT_CV THREADS (default 1)")
    p.add_argument(
        "--engine",
        default="lammps",
        choices=["lammps", "driver"],
        help="lammps (fix plumed) or driver (`plumed driver`: adds UNITS NATURAL for lj models)",
    )
    p.add_argument("--hills", default="HILLS", help="METAD FILE (default HILLS; OPES's kernels with --method opes)")
    p.add_argument("--colvar", default="COLVAR", help="PRINT FILE (default COLVAR)")
    p.add_argument(
        "--method", default="metad", choices=["metad", "opes"], help="well-tempered METAD (default) or OPES_METAD"
    )
    p.add_argument(
        "--barrier",
        type=float,
        default=METAD_DEFAULTS.barrier_kt,
        help=f"expected nucleation barrier in kT (OPES BARRIER; the budget check; default {METAD_DEFAULTS.barrier_kt:g})",
    )
    p.add_argument("--critical-size", type=float, default=None, help="molecules in the critical nucleus (budget check)")
    p.add_argument(
        "--budget", type=int, default=None, help="MD steps you plan: flag hills that cannot fill the barrier"
    )
    p.add_argument("--out", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=_cmd_plumed_input)


def _cmd_plumed_input(args: argparse.Namespace) -> int:
    from latentcv.export.plumed_input import PlumedInputOptions, plumed_input

    if args.atoms is not None and args.natoms is not None:
        raise ValueError("give --atoms or --natoms, not both")
    atoms = args.atoms
    if atoms is None:
        if args.natoms is None:
            raise ValueError(
                "pass --natoms N (atoms in the simulation, all of them in the CV) or --atoms LIST "
                "(a PLUMED atom list, e.g. 1-2048)"
            )
        if args.natoms < 1:
            raise ValueError(f"--natoms {args.natoms}: must be an integer >= 1 (the atoms in the simulation)")
        atoms = f"1-{args.natoms}"
    opts = PlumedInputOptions(
        atoms=atoms,
        cv=args.cv,
        temp=args.temp,
        height=args.height,
        sigma=args.sigma,
        pace=args.pace,
        biasfactor=args.biasfactor,
        bias_stride=args.bias_stride,
        stride=args.stride,
        device=args.device,
        threads=args.threads,
        engine=args.engine,
        hills=args.hills,
        colvar=args.colvar,
        method=args.method,
        barrier_kt=args.barrier,
        critical_size=args.critical_size,
        budget=args.budget,
    )
    text = plumed_input(args.model, opts)
    if args.out in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text)
        except OSError as exc:
            raise ValueError(f"--out {args.out}: cannot write it ({exc.strerror or exc})") from None
        print(
            f"latentcv plumed-input: wrote {args.out} ({'OPES_METAD' if args.method == 'opes' else 'METAD'} on cv.{args.cv})",
            file=sys.stderr,
        )
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model over a trajectory (C++ core): COLVAR file and plot")
    p.add_argument("model", help="model file written by `latentcv export`")
    p.add_argument("trajectory", help="LAMMPS dump, or any format mdtraj reads")
    p.add_argument("--top", default=None, help="topology for formats without one (mdtraj)")
    p.add_argument("--atoms-per-molecule", type=int, default=None, help="molecule size (default: the model's)")
    p.add_argument("--data-file", default=None, help="LAMMPS data file of the run (molecules from its bonds)")
    p.add_argument("--units", default=None, help="LAMMPS units style of a dump: lj, real, metal, nano")
    p.add_argument(
        "--length-unit",
        default=None,
        choices=list(MODEL_LENGTH_UNITS),
        help="unit of the numbers in an mdtraj-read file (default nm)",
    )
    p.add_argument("--stride", type=int, default=1, help="every n-th frame")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("-o", "--output", default="colvar.dat", help="COLVAR-style output (default colvar.dat)")
    p.add_argument("--plot", default=None, help="PNG of every output vs frame")
    p.add_argument(
        "--molecule-dump",
        default=None,
        help="LAMMPS dump of the molecules with c_p and c_nucleus (their share of n_crystal and "
        "n_nucleus): colour a nucleus in OVITO",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from latentcv.cv_models.app.evaluate import evaluate_trajectory, plot_colvar, write_colvar

    res = evaluate_trajectory(
        args.model,
        args.trajectory,
        top=args.top,
        atoms_per_molecule=args.atoms_per_molecule,
        data_file=args.data_file,
        units=args.units,
        length_unit=args.length_unit,
        stride=args.stride,
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
        molecule_dump=args.molecule_dump,
    )
    write_colvar(args.output, res)
    msg = f"latentcv eval: {len(res.frames)} frames -> {args.output}"
    if args.molecule_dump:
        msg += f", {args.molecule_dump} (per molecule)"
    if args.plot:
        plot_colvar(args.plot, res)
        msg += f", {args.plot}"
    print(msg)
    return 0


def _add_suggest_cutoff(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "suggest-cutoff",
        help="suggest [model] cutoff and r_on (and the ten Wolde cutoff) from the "
        "molecule-centre g(r) of crystal frames",
    )
    p.add_argument("trajectory", help="frames of the crystal: LAMMPS dump, or any format mdtraj reads")
    p.add_argument("--data-file", default=None, help="LAMMPS data file of the run (molecules from its bonds)")
    p.add_argument(
        "--atoms-per-molecule",
        type=int,
        default=None,
        help="molecule size, atoms in id order (default: data file bonds, a mol column, else 1)",
    )
    p.add_argument("--units", default="lj", help="LAMMPS units style of a dump: lj (default), real, metal, nano")
    p.add_argument("--top", default=None, help="topology for formats without one (mdtraj)")
    p.add_argument(
        "--length-unit",
        default="nm",
        choices=list(MODEL_LENGTH_UNITS),
        help="unit of the numbers in an mdtraj-read file (default nm)",
    )
    p.add_argument("--stride", type=int, default=1, help="every n-th frame")
    p.add_argument("--max-frames", type=int, default=20, help="at most this many frames, spread evenly (default 20)")
    p.add_argument("--r-max", type=float, default=None, help="largest distance of g(r) (default 2.5 mean spacings)")
    p.add_argument("--bin-width", type=float, default=None, help="g(r) bin (default 1/50 of the mean spacing)")
    p.add_argument("--plot", default=None, help="PNG of g(r) with the suggested cutoff and r_on")
    p.set_defaults(func=_cmd_suggest_cutoff)


def _cmd_suggest_cutoff(args: argparse.Namespace) -> int:
    from latentcv.cv_models.analysis.rdf import plot_rdf, suggest_cutoff
    from latentcv.cv_models.data.readers import read_trajectory

    frames = read_trajectory(
        args.trajectory,
        top=args.top,
        atoms_per_molecule=args.atoms_per_molecule,
        data_file=args.data_file,
        units=args.units,
        length_unit=args.length_unit,
        stride=args.stride,
    )
    if not frames:
        raise ValueError(f"no frames in {args.trajectory}")
    s = suggest_cutoff(frames, r_max=args.r_max, bin_width=args.bin_width, max_frames=args.max_frames)
    print(s.report())
    if args.plot:
        plot_rdf(args.plot, s)
        print(f"# g(r) plot: {args.plot}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--steps", type=int, default=None, help="MD steps (default: the demo's own)")
    p.add_argument("--seed", type=int, default=2024, help="LAMMPS velocity seed of the metadynamics run")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from latentcv.cv_models.app.demo import DemoConfig, run_demo

    run_demo(args.out, steps=args.steps, config=DemoConfig(seed=args.seed))
    return 0


def _add_walkers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "walkers", help="plumed inputs for K walkers sharing one metadynamics bias (docs/lammps-plugin.md)"
    )
    p.add_argument("plumed_dat", help="the single-walker plumed.dat (with METAD)")
    p.add_argument("walkers", type=int, help="number of walkers K")
    p.add_argument("--dir", default=".", help="folder all walkers read and write their HILLS.k in (default .)")
    p.add_argument("--rstride", type=int, default=100, help="steps between reads of the other walkers' hills")
    p.set_defaults(func=_cmd_walkers)


def _cmd_walkers(args: argparse.Namespace) -> int:
    from latentcv.cv_models.walkers import walker_inputs

    for path in walker_inputs(args.plumed_dat, args.walkers, args.dir, args.rstride):
        print(path)
    print(
        f"run walker k with `fix ... plumed plumedfile {Path(args.plumed_dat).stem}.${{walker}}"
        f"{Path(args.plumed_dat).suffix}` and `lmp -var walker k`, all at once"
    )
    return 0


def _add_system_options(p: argparse.ArgumentParser) -> None:
    """--system (an embedded system) or --system-file (the user's own: compare, refine)."""
    from latentcv.cv_models.systems import SYSTEMS

    which = p.add_mutually_exclusive_group()
    which.add_argument("--system", default="lj", choices=list(SYSTEMS), help="embedded system (default lj)")
    which.add_argument(
        "--system-file",
        default=None,
        help="your own system: a TOML file naming your LAMMPS data file, force field, state point "
        "and judge (docs/tutorial.md 'Your own system')",
    )


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="metadynamics on a model's CV vs PLUMED Q6 and ENERGY, over seeds")
    p.add_argument("model", nargs="?", default=None, help="exported model (needed for the `latent` CV)")
    p.add_argument("--output", default="n_crystal", help="model output biased (default n_crystal)")
    _add_system_options(p)
    p.add_argument("--cvs", nargs="+", default=["latent", "q6", "energy"], choices=["latent", "q6", "energy"])
    p.add_argument("--seeds", type=int, default=5, help="velocity seeds per CV (default 5)")
    p.add_argument("--cells", type=int, default=4, help="lattice cells per edge (default 4: 256 LJ atoms)")
    p.add_argument("--steps", type=int, default=60000, help="budget per run (default 60000)")
    p.add_argument("--temp", type=float, default=0.0, help="temperature (default: the system's state point)")
    _add_metad_options(p, stride_alias=True)
    p.add_argument(
        "--height",
        type=float,
        default=METAD_DEFAULTS.height_kt,
        help=f"HEIGHT in kT (default {METAD_DEFAULTS.height_kt:g})",
    )
    p.add_argument(
        "--kernel",
        default="",
        help="PLUMED kernel: 'optimised' (make plumed-opt; the fair peer for Q6) or a path (default: bundled)",
    )
    p.add_argument(
        "--sigma-scale",
        type=float,
        default=0.5,
        help="SIGMA = this x each CV's std in an unbiased melt run (default 0.5)",
    )
    p.add_argument("--workers", type=int, default=2, help="LAMMPS processes at once (default 2)")
    p.add_argument("--out", default="compare_out")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from latentcv.cv_models.app.compare import CompareConfig, compare

    cfg = CompareConfig(
        model=args.model or "",
        output=args.output,
        system=args.system,
        system_file=args.system_file or "",
        cvs=tuple(args.cvs),
        seeds=tuple(range(1, args.seeds + 1)),
        cells=args.cells,
        steps=args.steps,
        temp=args.temp,
        pace=args.pace,
        height_kt=args.height,
        biasfactor=args.biasfactor,
        stride=args.bias_stride,
        kernel=args.kernel,
        sigma_scale=args.sigma_scale,
        workers=args.workers,
        out=args.out,
    )
    print(compare(cfg))
    return 0


def _add_refine(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refine", help="biased runs -> harvested frames -> fine-tuned, re-exported CV, k rounds")
    p.add_argument("config", help="training config of the starting model")
    p.add_argument("checkpoint", help="the starting checkpoint (latentcv train)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seeds", type=int, default=2, help="biased runs per round")
    p.add_argument("--steps", type=int, default=20000, help="metadynamics steps per run")
    p.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs per round")
    p.add_argument("--cells", type=int, default=4, help="lattice cells per edge of the melt (default 4)")
    _add_system_options(p)
    p.add_argument("--out", default="refine_out")
    p.set_defaults(func=_cmd_refine)


def _cmd_refine(args: argparse.Namespace) -> int:
    from latentcv.cv_models.app.refine import RefineConfig, refine

    print(
        refine(
            RefineConfig(
                config=args.config,
                checkpoint=args.checkpoint,
                rounds=args.rounds,
                seeds=args.seeds,
                steps=args.steps,
                epochs=args.epochs,
                md_cells=args.cells,
                system=args.system,
                system_file=args.system_file or "",
                out=args.out,
            )
        )
    )
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
    _add_refine,
    _add_walkers,
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
