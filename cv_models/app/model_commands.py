"""The model's subcommands of the ``latentcv`` command line (:mod:`.cli`): ``train``,
``export``, ``eval``, ``suggest-cutoff``; an ``_add_<name>`` (arguments) and ``_cmd_<name>``
(calls the library) pair each."""

from __future__ import annotations

import argparse

from latentcv.cv_models.units import MODEL_LENGTH_UNITS, PHYSICAL_MODEL_LENGTH_UNITS


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
        help="deploy a model trained in reduced (lj) units for this physical length unit ... "
        "(alone: the physical unit the training frames are in, checked; the model keeps it)",
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
    p.add_argument(
        "--crystal-softness",
        type=float,
        default=1.0,
        metavar="T",
        help="divide each molecule's crystal logit by T >= 1: a softer n_crystal/n_nucleus that "
        "keeps a gradient in the melt where the trained head is sharp (default 1: as trained)",
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
        crystal_softness=args.crystal_softness,
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
