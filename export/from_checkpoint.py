"""``latentcv export CHECKPOINT -o model.pt``: a trained encoder → a checked deployable file.

:class:`LatentCVModule` wraps a trained :class:`~latentcv.cv_models.model.HierarchicalEncoder`
and adds derived CVs to its outputs; :func:`export_checkpoint` rebuilds the encoder from
a training checkpoint, reads the training data (for the length unit, the SIGMA hints
and the held-out frames of the self-check), and :func:`export_model` writes the file
through :func:`latentcv.export.deploy.save_deployable` only after it passed every check:

(the checks are listed in :mod:`latentcv.export.checks`; nothing is written unless all pass).

The module and its outputs: :mod:`latentcv.export.module`; the checks:
:mod:`latentcv.export.checks`; provenance and SIGMA hints: :mod:`latentcv.export.provenance`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import torch

from latentcv.cv_models.units import PHYSICAL_MODEL_LENGTH_UNITS

from .checks import export_model, select_check_frames
from .deploy import DTYPES
from .module import LatentCVModule
from .provenance import model_card, sigma_hints

__all__ = ["export_checkpoint", "frames_from_file"]

MAX_CHECK_FRAMES = 6


def frames_from_file(path: str | os.PathLike, **reader_kwargs) -> list:
    """Frames of a saved ``Dataset`` (``.npz``) or of any trajectory ``read_frames`` reads."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"frames file {p} does not exist")
    if p.suffix == ".npz":
        from latentcv.cv_models.data.dataset import Dataset

        return list(Dataset.load(p))
    from latentcv.cv_models.data.readers import read_frames

    return list(read_frames(p, **reader_kwargs))


def _load_training_frames(ck: dict, checkpoint: Path, config_path: Optional[str]) -> Tuple[list, object]:
    from latentcv.cv_models.config import Config, ConfigError, load_config
    from latentcv.cv_models.data.sources import load_frames

    if config_path:
        cfg = load_config(config_path)
    else:
        if "config" not in ck:
            raise ValueError(
                f"checkpoint {checkpoint} records no training config; pass --config CONFIG or --frames FILE"
            )
        if "config_dir" not in ck:
            raise ValueError(
                f"checkpoint {checkpoint} does not record where its config's relative paths start; "
                "pass --config CONFIG or --frames FILE"
            )
        cfg = Config.from_dict(ck["config"], base_dir=ck["config_dir"])
    try:
        return load_frames(cfg), cfg
    except (FileNotFoundError, OSError, ConfigError) as exc:
        raise FileNotFoundError(
            f"cannot read the training data of {checkpoint} ({exc}); pass --config CONFIG (the training config, "
            "for its relative paths) or --frames FILE (frames to check on and to estimate SIGMA from)"
        ) from exc


def export_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    dtype: str = "float64",
    check_frames: str | os.PathLike | Sequence | None = None,
    config: Optional[str] = None,
    name: Optional[str] = None,
    max_check_frames: int = MAX_CHECK_FRAMES,
    log: Callable[[str], None] = print,
    length_unit: Optional[str] = None,
    unit_length: Optional[float] = None,
    species_masses: Optional[Sequence[float]] = None,
    nucleus: Optional[Tuple[float, float]] = None,
    model_format: str = "torchscript",
    crystal_softness: float = 1.0,
) -> Path:
    """``latentcv export``: checkpoint of ``latentcv train`` → checked deployable model file.

    Args:
        checkpoint: ``checkpoint.pt`` (or ``_best``/``_last``) written by training.
        out: model file to write (atomically, only after the self-checks pass).
        dtype: "float64" (default) or "float32": the dtype the deployed model computes in.
        check_frames: frames for the self-check and SIGMA hints instead of the training
            data's held-out blocks: a trajectory/dataset path, or a list of ``Frame``.
        config: the training config file (when the checkpoint's data paths don't resolve).
        name: model name in the metadata (default: the checkpoint folder's name).
        length_unit, unit_length: deploy a model trained in reduced (lj) units for a
            physical length unit ("A" or "nm"), where the reduced unit σ is ``unit_length``
            of it (e.g. "A", 3.405 for argon): the model divides positions and cell by σ.
            ``length_unit`` alone: the unit the training frames are already in (checked;
            a model trained on Å frames is exported in Å with or without it).
        species_masses: mass of each species index in the engine's mass unit (amu; reduced
            for lj): LATENT_CV then checks every atom's mass against the species pattern.
        nucleus: (fraction, width) of ``n_nucleus`` instead of the checkpoint's
            ``[model] nucleus_fraction`` / ``nucleus_width`` (not trained, so free to change).
        model_format: "torchscript" (a ``.pt`` file) or "aoti" (an AOTInductor package ``.pt2``).
        crystal_softness: divide the per-molecule crystal logit by this (≥ 1): ``p_m =
            sigmoid(logit / T)``, a softer ``n_crystal`` (and ``n_nucleus``) with more gradient
            where the trained head is sure (:func:`soften_crystal_head`).
    Returns:
        the path written.
    """
    from latentcv.cv_models.checkpoint import load_trained_encoder

    torch.set_num_threads(1)
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {tuple(DTYPES)}, not {dtype!r}")
    checkpoint = Path(checkpoint)
    ck, encoder = load_trained_encoder(checkpoint)
    log(
        f"latentcv export: loaded {checkpoint} (latent_dim {encoder.latent_dim}, "
        f"{encoder.atoms_per_molecule} atom(s)/molecule, cutoff {encoder.cutoff:g})"
    )
    _check_species_masses(encoder, species_masses)
    if nucleus is not None:
        from latentcv.cv_models.layers import NucleusCount

        encoder.nucleus = NucleusCount(*nucleus)
        log(f"latentcv export: n_nucleus with neighbour fraction {nucleus[0]:g}, width {nucleus[1]:g}")
    if crystal_softness != 1.0:
        soften_crystal_head(encoder, crystal_softness)
        log(f"latentcv export: crystal logits divided by {crystal_softness:g} (--crystal-softness)")
    scale = _length_scale(length_unit, unit_length)
    module = LatentCVModule(encoder, length_scale=scale).eval()
    frames = _export_frames(ck, checkpoint, config, check_frames)
    unit, check = _deployed_check_frames(frames, encoder.atoms_per_molecule, scale, length_unit, max_check_frames, log)
    hints = sigma_hints(module, frames.sigma)
    log(
        "latentcv export: SIGMA hints (half the std over "
        + f"{len(hints.frames)} {hints.which} frames): "
        + ", ".join(f"{n}={h:.4g}" for n, h in zip(module.output_names(), hints.values))
    )
    card = model_card(
        module,
        ck,
        checkpoint,
        frames.all,
        frames.source,
        hints,
        unit,
        dtype,
        name or checkpoint.resolve().parent.name or "latentcv",
        species_masses,
    )
    return export_model(module, card, out, check, log=log, model_format=model_format).path


def _check_species_masses(encoder, species_masses: Optional[Sequence[float]]) -> None:
    if not species_masses:
        return
    n_species = int(encoder.species.max()) + 1 if encoder.species.numel() else 1
    if len(species_masses) < n_species or not all(m > 0 for m in species_masses):
        raise ValueError(
            f"--species-masses needs one positive mass per species index (the model has "
            f"{n_species}: pattern {encoder.species.tolist()})"
        )


def _length_scale(length_unit: Optional[str], unit_length: Optional[float]) -> float:
    """σ in the deployed physical unit (1 when the model keeps its training unit: no
    option, or ``--length-unit`` alone, which must then be the frames' unit)."""
    if unit_length is None and (length_unit is None or length_unit in PHYSICAL_MODEL_LENGTH_UNITS):
        return 1.0
    if length_unit not in PHYSICAL_MODEL_LENGTH_UNITS or not (unit_length or 0) > 0:
        raise ValueError(
            "--length-unit (A or nm) and --unit-length (the reduced unit sigma in that unit, > 0) go together"
        )
    return float(unit_length)


@dataclasses.dataclass
class ExportFrames:
    """The frames of an export: all of them (fingerprint, unit), the held-out ones (self-check),
    those the SIGMA hints come from, and a phrase naming where the held-out ones come from."""

    all: list
    held_out: list
    sigma: list
    source: str


def _export_frames(ck: dict, checkpoint: Path, config: Optional[str], check_frames) -> ExportFrames:
    from latentcv.cv_models.data.split import split_frames

    if check_frames is None:
        frames, cfg = _load_training_frames(ck, checkpoint, config)
        _, held_out = split_frames(frames, cfg.data.n_blocks, cfg.data.val_fraction, cfg.training.seed, cfg.data.gap)
        source = "validation blocks of the training data"
        if not held_out:
            held_out, source = frames, "training frames (the split held none out)"
    else:
        from_path = isinstance(check_frames, (str, os.PathLike))
        frames = frames_from_file(check_frames) if from_path else list(check_frames)
        held_out, source = frames, f"--frames {check_frames}" if from_path else "given frames"
    if not frames:
        raise ValueError("no frames found to check the export on; pass --frames FILE")
    return ExportFrames(frames, held_out, frames, source)


def _deployed_check_frames(
    frames: ExportFrames,
    atoms_per_molecule: int,
    scale: float,
    length_unit: Optional[str],
    max_check_frames: int,
    log: Callable[[str], None],
) -> Tuple[str, list]:
    """(the deployed model's length unit, the self-check frames in that unit)."""
    units = sorted({f.length_unit for f in frames.all})
    if len(units) != 1:
        raise ValueError(f"the frames mix length units {units}; a model has one length unit")
    unit, held_out = units[0], frames.held_out
    if scale == 1.0 and length_unit not in (None, unit):
        raise ValueError(
            f"--length-unit {length_unit}: the training frames are in {unit}; "
            + (
                f"add --unit-length (the reduced unit sigma in {length_unit}) to deploy this lj model in {length_unit}"
                if unit == "lj"
                else f"a model trained in {unit} is exported in {unit} (PLUMED converts any engine's unit)"
            )
        )
    if scale != 1.0:
        if unit != "lj":
            raise ValueError(
                f"--length-unit/--unit-length rescale models trained in reduced (lj) units; these frames are in {unit}"
            )
        unit = length_unit
        held_out = [
            dataclasses.replace(f, positions=f.positions * scale, cell=f.cell * scale, length_unit=length_unit)
            for f in held_out
        ]
        log(f"latentcv export: deploying in {length_unit} with the reduced length unit = {scale:g} {length_unit}")
    for f in held_out:
        if f.n_atoms % atoms_per_molecule:
            raise ValueError(
                f"frame {f.trajectory}:{f.index} has {f.n_atoms} atoms, not whole molecules of "
                f"{atoms_per_molecule} atoms (the model's atoms_per_molecule); check --frames"
            )
    check = select_check_frames(held_out, max_check_frames)
    log(f"latentcv export: self-check frames: {len(check)} from the {frames.source}")
    return unit, check


def soften_crystal_head(encoder, softness: float) -> None:
    """Divide the encoder's per-molecule crystal logit by ``softness`` (T ≥ 1), in place, by
    scaling the last linear layer of its crystal head: ``p_m = sigmoid(logit / T)``.

    A head trained on sharp labels (e.g. CHILL+) reads the liquid's molecules at logits of
    −6 to −9, where ``dp/dlogit`` is ~1e-3: a bias on ``n_crystal`` then has almost no force
    to push the liquid with. Dividing by T (temperature scaling, Guo et al., ICML 2017)
    keeps every molecule's ranking and the sign of its vote, and multiplies that gradient by
    up to e^{|logit|(1 − 1/T)} / T. Not trained: the export's checks then hold for the
    softened head."""
    if not softness >= 1.0:
        raise ValueError(f"--crystal-softness must be >= 1 (1: the trained head), not {softness}")
    last = encoder.crystal_head.net[-1]
    with torch.no_grad():
        last.weight.div_(softness)
        last.bias.div_(softness)
    encoder.crystal_softness = float(getattr(encoder, "crystal_softness", 1.0)) * softness  # the metadata's
