"""``latentcv train CONFIG``: its arguments and the run.

Building the parser imports neither torch nor the training loop (``latentcv --help`` stays
fast); :func:`run_train_command` imports them when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from latentcv.cv_models.config import merge_overrides, parse_overrides

__all__ = ["add_train_arguments", "run_train_command"]


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``latentcv train``: CONFIG, --epochs, --output-dir,
    --device, --no-resume, --no-progress, --processes, --set SECTION.KEY=VALUE (repeatable)."""
    parser.add_argument("config", help="TOML or JSON config file ([data], [model], [training])")
    parser.add_argument("--epochs", type=int, default=None, help="override [training] epochs")
    parser.add_argument("--output-dir", default=None, help="override [training] output_dir")
    parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="override [training] device")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    parser.add_argument("--no-progress", action="store_true", help="one line per epoch instead of the progress bar")
    parser.add_argument(
        "--processes", type=int, default=None, help="override [training] processes (data-parallel training processes)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key, VALUE a TOML literal (repeatable), e.g. "
        "--set model.cutoff=1.6 --set training.lr=1e-3; the options above win over --set",
    )


def run_train_command(args: argparse.Namespace) -> Path:
    """Run ``latentcv train`` from parsed :func:`add_train_arguments` arguments.

    ``--set`` values go first, the named options (``--epochs`` ...) on top; both pass the
    validation of the config file. Relative paths given with ``--output-dir`` are relative
    to the current folder, those given with ``--set training.output_dir=...`` to the
    config file (as in the file)."""
    ov: Dict[str, Any] = {}
    if args.epochs is not None:
        ov["epochs"] = args.epochs
    if args.output_dir is not None:
        ov["output_dir"] = str(Path(args.output_dir).resolve())
    if args.device is not None:
        ov["device"] = args.device
    if args.no_resume:
        ov["resume"] = False
    if args.no_progress:
        ov["progress"] = False
    if getattr(args, "processes", None) is not None:
        ov["processes"] = args.processes
    from latentcv.cv_models.training import train_from_config

    path = train_from_config(
        args.config, merge_overrides(parse_overrides(getattr(args, "overrides", None) or []), {"training": ov})
    )
    print(f"latentcv train: wrote {path}")
    return path
