"""The metadynamics subcommands of the ``latentcv`` command line (:mod:`.cli`):
``plumed-input``, ``demo``, ``walkers``, ``compare``, ``fes``, ``refine``; an ``_add_<name>``
(arguments) and ``_cmd_<name>`` (calls the library) pair each, sharing the METAD options
(:data:`~latentcv.cv_models.systems.METAD_DEFAULTS`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from latentcv.cv_models.systems import METAD_DEFAULTS
from latentcv.cv_models.atomic_write import write_atomically

# compare's CVs (latentcv.cv_models.app.compare.CVS, not imported here: the parser stays light)
COMPARE_CVS = ("latent", "q6", "cluster", "ice", "energy")


def _add_metad_options(p: argparse.ArgumentParser, stride_alias: bool = False) -> None:
    """--pace, --biasfactor and --bias-stride, defaulting to latentcv's METAD_DEFAULTS
    (plumed-input, compare; ``stride_alias``: compare, whose old name of --bias-stride is
    --stride and whose default stride is the system's)."""
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
        default=0 if stride_alias else METAD_DEFAULTS.bias_stride,
        help="METAD STRIDE: multiple time stepping, the CV and its forces every N steps (default "
        + ("the system's: 5, 1 for mW" if stride_alias else f"{METAD_DEFAULTS.bias_stride}")
        + "; 1 = every step; docs/export.md 'Bias STRIDE')",
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
    p.add_argument("--height", type=float, default=None, help=f"hill height (default: {METAD_DEFAULTS.height_kt:g} kT)")
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        help=f"hill width (default: {METAD_DEFAULTS.sigma_melt_stds:g} x the output's melt std, from the model's sigma_hint)",
    )
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
    _add_method_options(p)
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
            write_atomically(args.out, text.encode(), "plumed input")
        except OSError as exc:
            raise ValueError(f"--out {args.out}: cannot write it ({exc.strerror or exc})") from None
        print(
            f"latentcv plumed-input: wrote {args.out} ({'OPES_METAD' if args.method == 'opes' else 'METAD'} on cv.{args.cv})",
            file=sys.stderr,
        )
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


def _add_method_options(p: argparse.ArgumentParser) -> None:
    """--method and --barrier, shared by plumed-input and compare."""
    p.add_argument(
        "--method", default="metad", choices=["metad", "opes"], help="well-tempered METAD (default) or OPES_METAD"
    )
    p.add_argument(
        "--barrier",
        type=float,
        default=METAD_DEFAULTS.barrier_kt,
        help=f"free energy in kT the bias must climb along the CV (OPES BARRIER, where OPES caps its bias; "
        f"plumed-input's budget check; default {METAD_DEFAULTS.barrier_kt:g}, measured: docs/export.md)",
    )


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="metadynamics on a model's CV vs PLUMED Q6, largest cluster and ENERGY, over seeds"
    )
    p.add_argument("model", nargs="?", default=None, help="exported model (needed for the `latent` CV)")
    p.add_argument("--output", default="n_crystal", help="model output biased (default n_crystal)")
    _add_system_options(p)
    p.add_argument(
        "--cvs",
        nargs="+",
        default=["latent", "q6", "energy"],
        choices=COMPARE_CVS,
        help="CVs biased in turn (default latent q6 energy); cluster = PLUMED's analytic largest solid "
        "(on mW: ice-like) cluster; ice = PLUMED's smooth count of ice-like molecules (LOCAL_Q3)",
    )
    p.add_argument("--seeds", type=int, default=5, help="velocity seeds per CV (default 5)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=1,
        help="first velocity seed (default 1): --first-seed 4 --seeds 2 runs seeds 4 and 5, e.g. to add "
        "seeds to a finished comparison or to share the seeds between machines",
    )
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
        default=METAD_DEFAULTS.sigma_melt_stds,
        help=f"SIGMA = this x each CV's std in an unbiased melt run (default {METAD_DEFAULTS.sigma_melt_stds:g})",
    )
    _add_method_options(p)
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
        seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
        cells=args.cells,
        steps=args.steps,
        temp=args.temp,
        pace=args.pace,
        height_kt=args.height,
        biasfactor=args.biasfactor,
        stride=args.bias_stride,
        kernel=args.kernel,
        method=args.method,
        barrier_kt=args.barrier,
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


def _add_fes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fes", help="free energy along the nucleus size, n*, ΔG*, CNT fit and rate from compare's biased runs"
    )
    p.add_argument("folder", help="a `latentcv compare` output folder (its runs/<cv>-seed<k>)")
    p.add_argument("--cv", default="latent", choices=COMPARE_CVS, help="whose runs (default latent)")
    p.add_argument("--method", default="metad", choices=["metad", "opes"], help="which runs (default metad)")
    p.add_argument(
        "--bin-width", type=float, default=0.0, help="nucleus-size bin in molecules (default: largest n / 80)"
    )
    p.add_argument("--out", default=None, help="output folder (default FOLDER/fes-<cv>[-opes])")
    p.set_defaults(func=_cmd_fes)


def _cmd_fes(args: argparse.Namespace) -> int:
    from latentcv.cv_models.app.nucleation_report import write_report

    out = Path(args.out) if args.out else None
    print(write_report(Path(args.folder), args.cv, args.method, args.bin_width, out))
    return 0
