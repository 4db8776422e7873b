"""``latentcv export CHECKPOINT -o model.pt``: a trained encoder → a checked deployable file.

:class:`LatentCVModule` wraps a trained :class:`~latentcv.cv_models.model.HierarchicalEncoder`
and adds derived CVs to its outputs; :func:`export_checkpoint` rebuilds the encoder from
a training checkpoint, reads the training data (for the length unit, the SIGMA hints
and the held-out frames of the self-check), and :func:`export_model` writes the file
through :func:`latentcv.export.deploy.save_deployable` only after it passed every check:

1. eager encoder vs scripted module vs the C++ core (``latentcv.cv_models.core``) on
   held-out frames: values and gradients agree to round-off of the model's dtype;
2. for float32 models, the float32 values stay close to the float64 eager values;
3. the C++ gradients (positions and cell) agree with central finite differences of the
   float64 eager model on one small frame.

The file is first written under a temporary name next to the target, checked there,
then renamed: a failed check leaves no file behind (and no partial one ever exists).

Outputs (K = latent_dim + 3), in this order:

- ``z0 .. z{d-1}``: the latent coordinates (posterior mean), dimensionless;
- ``proj``: projection of z on the melt → crystal centroid axis,
  ``(z - c_melt)·(c_crys - c_melt) / |c_crys - c_melt|²`` (0 at the melt centroid, 1 at
  the crystal centroid);
- ``dcrys``: distance to the crystal centroid in units of the centroid separation,
  ``sqrt(|z - c_crys|² / |c_crys - c_melt|² + 1e-4)`` (0.01 at the crystal, ≈1 at the melt
  centroid; the 1e-4 rounds the cone of |z - c_crys| off into a smooth minimum, so that
  value and gradient stay smooth near the crystal centroid);
- ``n_crystal``: the extensive number of crystal-like molecules ``Σ_m p_m``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from latentcv.cv_models.data.pbc import minimum_image
from latentcv.cv_models.units import PHYSICAL_MODEL_LENGTH_UNITS

from .deploy import DTYPES, ModelCard, save_deployable

__all__ = [
    "LatentCVModule",
    "CheckResult",
    "ExportResult",
    "ExportCheckError",
    "export_checkpoint",
    "export_model",
    "sigma_hints",
    "data_fingerprint",
    "frames_from_file",
    "molecule_extent",
    "TOLERANCES",
]

# relative tolerances of the self-checks, per model dtype (see docs/export.md)
TOLERANCES: Dict[str, Dict[str, float]] = {
    "float64": {"values": 1e-10, "gradients": 1e-10, "vs_float64": 1e-10, "finite_differences": 1e-5},
    "float32": {"values": 1e-4, "gradients": 1e-3, "vs_float64": 1e-3, "finite_differences": 1e-2},
}
DCRYS_EPS2 = 1e-4  # dcrys >= 0.01: quadratic, not a cone, within ~0.01 separation of the crystal centroid
MAX_CHECK_FRAMES = 6
MAX_SIGMA_FRAMES = 256


class ExportCheckError(RuntimeError):
    """A self-check of ``latentcv export`` failed; the message names the check and numbers."""


# ---------------------------------------------------------------------------- the module
class LatentCVModule(nn.Module):
    """Trained encoder + derived CVs; what ``latentcv export`` scripts and saves.

    Args:
        encoder: a trained ``HierarchicalEncoder`` with centroids set (``has_centroids``).
    ``forward(positions[N,3], cell[3,3], edge_index[2,P], edge_shift[P,3]) -> [K]`` with
    the outputs of :func:`output_names` (module docstring); ``molecule_centers`` is the
    encoder's.
    """

    def __init__(self, encoder: nn.Module, length_scale: float = 1.0) -> None:
        super().__init__()
        if not length_scale > 0.0:
            raise ValueError("the length scale must be positive")
        if float(encoder.has_centroids.reshape(-1)[0]) != 1.0:
            raise ValueError("the encoder has no crystal/melt centroids (they are set at the end of training from "
                             "frames labelled crystal and melt); retrain with labelled crystal and melt frames")
        crys = encoder.crystal_centroid.detach().clone()
        melt = encoder.melt_centroid.detach().clone()
        axis = crys - melt
        sep2 = float((axis * axis).sum())
        if not sep2 > 0.0:
            raise ValueError("the crystal and melt centroids of the latent space coincide: the model does not "
                             "separate the phases; train longer or with more data before exporting")
        self.encoder = encoder
        # input length unit per training length unit (e.g. sigma = 3.405 A for an lj model deployed in A)
        self.length_scale = float(length_scale)
        self.cutoff = float(encoder.cutoff) * self.length_scale  # in the input length unit
        self.latent_dim = int(encoder.latent_dim)
        self.dcrys_eps2 = float(DCRYS_EPS2)
        self.register_buffer("crystal_centroid", crys)
        self.register_buffer("melt_centroid", melt)
        self.register_buffer("axis", axis / sep2)  # proj = (z - melt) . axis
        self.register_buffer("inv_separation", torch.tensor(1.0 / math.sqrt(sep2), dtype=crys.dtype))
        self._names: List[str] = [f"z{k}" for k in range(self.latent_dim)] + ["proj", "dcrys", "n_crystal"]

    @torch.jit.export
    def output_names(self) -> List[str]:
        """``z0..z{d-1}, proj, dcrys, n_crystal``."""
        return self._names

    @torch.jit.export
    def derived(self, z: Tensor, n_crystal: Tensor) -> Tensor:
        """All K outputs [B, K] from latents ``z`` [B, d] and counts ``n_crystal`` [B]."""
        proj = ((z - self.melt_centroid) * self.axis).sum(-1)
        dz = (z - self.crystal_centroid) * self.inv_separation
        dcrys = torch.sqrt((dz * dz).sum(-1) + self.dcrys_eps2)
        return torch.cat([z, proj.unsqueeze(-1), dcrys.unsqueeze(-1), n_crystal.unsqueeze(-1)], dim=-1)

    def forward(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        if self.length_scale != 1.0:
            positions = positions / self.length_scale
            cell = cell / self.length_scale
        out = self.encoder(positions, cell, edge_index, edge_shift)  # [z..., n_crystal]
        d = self.latent_dim
        return self.derived(out[:d].unsqueeze(0), out[d:d + 1])[0]

    @torch.jit.export
    def molecule_centers(self, positions: Tensor, cell: Tensor) -> Tensor:
        if self.length_scale == 1.0:
            return self.encoder.molecule_centers(positions, cell)
        s = self.length_scale
        return self.encoder.molecule_centers(positions / s, cell / s) * s


# ---------------------------------------------------------------------------- data helpers
def data_fingerprint(frames: Sequence) -> str:
    """``sha256:<hex>`` of the frames' arrays (positions, cell, molecule, species) and
    labels/units, in order: identifies the training data independently of its files."""
    h = hashlib.sha256()
    for f in frames:
        for a in (f.positions, f.cell):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        for a in (f.molecule, f.species):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        h.update(f"{int(f.label)}|{f.length_unit}|{f.trajectory}|{int(f.index)};".encode())
    return "sha256:" + h.hexdigest()


def molecule_extent(frames: Sequence, atoms_per_molecule: int, margin: float = 1.5) -> float:
    """``margin`` x the largest minimum-image distance of an atom from its molecule's first
    atom over ``frames`` (0 for one-atom molecules): the metadata key ``molecule_extent``
    the C++ side uses to refuse ATOMS lists not given molecule by molecule."""
    a = int(atoms_per_molecule)
    if a < 2:
        return 0.0
    worst = 0.0
    for f in frames:
        x = np.asarray(f.positions, dtype=np.float64).reshape(-1, a, 3)
        d = minimum_image(x - x[:, :1, :], f.cell)
        worst = max(worst, float(np.linalg.norm(d, axis=-1).max()))
    return margin * worst


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


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


def _graph(module: nn.Module, pos: Tensor, cell: Tensor, cutoff: float) -> Tuple[Tensor, Tensor]:
    """The pair list on the centres of the module's own ``molecule_centers`` (the contract's
    method, in the module's input length unit)."""
    from latentcv.cv_models.graphs import neighbor_list

    with torch.no_grad():
        c = module.molecule_centers(pos.detach(), cell.detach())
        ei, sh = neighbor_list(c, cell.detach(), cutoff)
    return ei, sh.to(pos.dtype)


def _eager(module: nn.Module, positions: np.ndarray, cell: np.ndarray, dtype: torch.dtype,
           gradients: bool, cutoff: float) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Values [K] (and d/dpositions [K,N,3], d/dcell [K,3,3]) of an eager or scripted module
    with a fresh (skin-free) Python neighbour list."""
    pos = torch.tensor(positions, dtype=dtype, requires_grad=gradients)
    box = torch.tensor(cell, dtype=dtype, requires_grad=gradients)
    ei, sh = _graph(module, pos, box, cutoff)
    with torch.set_grad_enabled(gradients):
        out = module(pos, box, ei, sh)
        if not gradients:
            return out.detach().double().numpy(), None, None
        gp, gc = [], []
        for k in range(out.shape[0]):
            a, b = torch.autograd.grad(out[k], (pos, box), retain_graph=k + 1 < out.shape[0], allow_unused=True)
            gp.append(torch.zeros_like(pos) if a is None else a)
            gc.append(torch.zeros_like(box) if b is None else b)
    return (out.detach().double().numpy(), torch.stack(gp).double().numpy(), torch.stack(gc).double().numpy())


def sigma_hints(module: LatentCVModule, frames: Sequence, max_frames: int = MAX_SIGMA_FRAMES) -> Tuple[List[float], List, str]:
    """Half the standard deviation of every output over the melt frames (all frames if
    none is labelled melt): a METAD SIGMA hint. Returns (hints [K], frames used, which).
    The hint of an extensive output (``n_crystal``) holds for the frames' size: it grows
    like the square root of the number of molecules."""
    from latentcv.cv_models.data.frames import MELT
    from latentcv.cv_models.training import encode_frames, prepare_samples

    melt = [f for f in frames if int(f.label) == MELT]
    which = "melt"
    if len(melt) < 2:
        melt, which = list(frames), "all (fewer than 2 melt frames)"
    if len(melt) > max_frames:
        melt = [melt[i] for i in np.linspace(0, len(melt) - 1, max_frames).round().astype(int)]
    enc = module.encoder
    dtype = module.crystal_centroid.dtype
    samples = prepare_samples(melt, enc.atoms_per_molecule, enc.cutoff, dtype)
    out = encode_frames(enc, samples, torch.device("cpu"))
    with torch.no_grad():
        values = module.derived(out["z"].to(dtype), out["n_crystal"].to(dtype)).double().numpy()
    std = values.std(axis=0) if len(values) > 1 else np.zeros(values.shape[1])
    scale = np.maximum(np.abs(values).max(axis=0), 1.0)
    hints = np.where(std > 0, 0.5 * std, 1e-3 * scale)
    return [float(h) for h in hints], melt, which


# ---------------------------------------------------------------------------- checks
@dataclass
class CheckResult:
    """One self-check: the largest absolute and relative deviation and the tolerance.

    ``max_rel`` = max over outputs k of max|a_k - b_k| / scale_k, with scale_k the
    largest |reference| of output k over the compared entries (floored).
    """

    name: str
    max_abs: float
    max_rel: float
    tolerance: float
    detail: str = ""
    fatal: bool = True

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_rel)) and self.max_rel <= self.tolerance

    def line(self) -> str:
        status = "ok" if self.ok else ("FAILED" if self.fatal else "WARNING (not fatal)")
        return (f"  {self.name:42s} max abs {self.max_abs:.3e}  max rel {self.max_rel:.3e}  "
                f"(tolerance {self.tolerance:.0e})  {status}{'  ' + self.detail if self.detail else ''}")


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and measured."""

    path: Path
    metadata: Dict[str, str]
    checks: List[CheckResult] = field(default_factory=list)


def _compare(name: str, a: np.ndarray, ref: np.ndarray, tol: float, floor: np.ndarray | float = 1e-12,
             names: Optional[Sequence[str]] = None, fatal: bool = True) -> CheckResult:
    """a, ref: [F, K, ...] arrays; relative to the per-output scale (axis 1)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        return CheckResult(name, math.inf, math.inf, tol, f"shape {a.shape} != {ref.shape}")
    diff = np.abs(a - ref)
    axes = tuple(i for i in range(diff.ndim) if i != 1)
    scale = np.maximum(np.abs(ref).max(axis=axes), floor)
    rel = diff.max(axis=axes) / scale
    worst = int(np.argmax(rel))
    detail = f"worst output: {names[worst]}" if names is not None and len(names) == len(rel) else ""
    return CheckResult(name, float(diff.max()), float(rel.max()), tol, detail, fatal)


def _select_check_frames(frames: Sequence, n: int) -> list:
    frames = list(frames)
    if len(frames) <= n:
        return frames
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in idx]


def run_checks(module: LatentCVModule, path: Path, frames: Sequence, dtype_name: str,
               log: Callable[[str], None] = print) -> List[CheckResult]:
    """All self-checks of a candidate model file ``path`` (written from ``module``) on
    ``frames``; returns the results (the caller decides; see :func:`export_model`)."""
    from latentcv.cv_models import core as native

    tol = TOLERANCES[dtype_name]
    dtype = DTYPES[dtype_name]
    eager = copy.deepcopy(module).to(dtype).eval()
    eager64 = copy.deepcopy(module).to(torch.float64).eval()
    scripted = torch.jit.load(str(path), map_location="cpu")
    core = native.Model(str(path), device="cpu", threads=1, warmup=False)
    if list(core.output_names) != module.output_names():
        raise ExportCheckError(f"check 'output names': C++ core reads {list(core.output_names)}, "
                               f"module has {module.output_names()}")
    rc = float(module.cutoff)
    ev, eg, ec, sv, cv_, cg, cc, e64 = [], [], [], [], [], [], [], []
    for f in frames:
        v, gp, gc = _eager(eager, f.positions, f.cell, dtype, True, rc)
        ev.append(v)
        eg.append(gp)
        ec.append(gc)
        sv.append(_eager(scripted, f.positions, f.cell, dtype, False, rc)[0])
        v, gp, gc = core.evaluate(np.ascontiguousarray(f.positions, dtype=np.float64),
                                  np.ascontiguousarray(f.cell, dtype=np.float64), gradients=True)
        cv_.append(v)
        cg.append(gp)
        cc.append(gc)
        if dtype_name != "float64":
            e64.append(_eager(eager64, f.positions, f.cell, torch.float64, False, rc)[0])
    ev, sv, cv_ = np.array(ev), np.array(sv), np.array(cv_)
    names = module.output_names()
    checks = [
        _compare("values: scripted vs eager", sv, ev, tol["values"], names=names),
        _compare("values: C++ core vs eager", cv_, ev, tol["values"], names=names),
    ]
    # gradients: positions [F,K,N,3] (frames may differ in N: compare frame by frame)
    gabs, grel = 0.0, 0.0
    for a, b, c_, d in zip(cg, eg, cc, ec):
        both_a = np.concatenate([np.asarray(a).reshape(a.shape[0], -1), np.asarray(c_).reshape(a.shape[0], -1)], 1)
        both_b = np.concatenate([b.reshape(b.shape[0], -1), d.reshape(b.shape[0], -1)], 1)
        r = _compare("", both_a[None], both_b[None], tol["gradients"], floor=1e-12)
        gabs, grel = max(gabs, r.max_abs), max(grel, r.max_rel)
    checks.append(CheckResult("gradients (positions, cell): C++ vs eager", gabs, grel, tol["gradients"]))
    if e64:
        # precision lost by computing in float32 (reported; a warning, not a refusal: it is
        # a property of the model, e.g. centroids close together relative to |z|)
        checks.append(_compare(f"values: {dtype_name} C++ vs float64 eager", cv_, np.array(e64), tol["vs_float64"],
                               names=names, fatal=False))
    checks += _finite_difference_check(eager64, core, min(frames, key=lambda f: f.n_atoms), names, dtype_name, tol)
    return checks


def _finite_difference_check(eager64: LatentCVModule, core, frame, names: Sequence[str], dtype_name: str,
                             tol: Dict[str, float]) -> List[CheckResult]:
    """Gradients vs central differences of the float64 eager model on ``frame``: 6
    position components of 2 atoms and all 9 cell components, every output.

    float64 models: the C++ gradients are compared (fatal). float32 models: the float64
    eager autograd gradients are compared (fatal: the gradient is the right one; the
    float32 C++ graph is the same graph, checked against eager above), and the float32
    C++ gradients are reported against the same differences (a precision warning)."""
    pos = np.array(frame.positions, dtype=np.float64)
    cell = np.array(frame.cell, dtype=np.float64)
    rc = float(eager64.cutoff)
    _, cgp, cgc = core.evaluate(pos, cell, gradients=True)
    v0, egp, egc = _eager(eager64, pos, cell, torch.float64, True, rc)
    h = 1e-5 * rc
    rng = np.random.default_rng(0)
    atoms = rng.choice(pos.shape[0], size=min(2, pos.shape[0]), replace=False)

    def value(which: str, moved: np.ndarray) -> np.ndarray:
        """Outputs with the positions ("p") or the cell ("c") replaced by ``moved``."""
        p, c = (moved, cell) if which == "p" else (pos, moved)
        return _eager(eager64, p, c, torch.float64, False, rc)[0]

    components = [("p", int(i), k) for i in atoms for k in range(3)] + [("c", a, b) for a in range(3) for b in range(3)]
    fd = []
    for which, a, b in components:
        plus, minus = (pos.copy(), pos.copy()) if which == "p" else (cell.copy(), cell.copy())
        plus[a, b] += h
        minus[a, b] -= h
        fd.append((value(which, plus) - value(which, minus)) / (2 * h))
    fd = np.array(fd).T  # [K, E]
    # scale per output: the full gradient's size, floored by the finite-difference noise
    gscale = np.maximum(np.abs(egp).reshape(egp.shape[0], -1).max(1), np.abs(egc).reshape(egc.shape[0], -1).max(1))
    floor = 1e-6 * np.maximum(np.abs(v0), 1.0) / rc
    what = f"{pos.shape[0]} atoms, h={h:.1e}, {fd.shape[1]} components"

    def compare(name: str, gp: np.ndarray, gc: np.ndarray, tolerance: float, fatal: bool) -> CheckResult:
        an = np.array([gp[:, i, k] if t == "p" else gc[:, i, k] for t, i, k in components]).T
        diff = np.abs(fd - an)
        rel = diff.max(1) / np.maximum(gscale, floor)
        worst = names[int(np.argmax(rel))] if len(names) == len(rel) else "?"
        return CheckResult(name, float(diff.max()), float(rel.max()), tolerance, f"{what}, worst output: {worst}", fatal)

    if dtype_name == "float64":
        return [compare("gradients: C++ vs finite differences", cgp, cgc, tol["finite_differences"], True)]
    return [compare("gradients: float64 eager vs finite differences", egp, egc, TOLERANCES["float64"]["finite_differences"], True),
            compare(f"gradients: {dtype_name} C++ vs finite differences", cgp, cgc, tol["finite_differences"], False)]


# ---------------------------------------------------------------------------- export
def _in_training_mode(module: nn.Module) -> bool:
    return any(m.training for m in module.modules())


def export_model(module: LatentCVModule, card: ModelCard, out: str | os.PathLike, frames: Sequence,
                 log: Callable[[str], None] = print) -> ExportResult:
    """Check ``module`` (eager vs scripted vs C++ core, gradients vs finite differences)
    on ``frames`` and write it to ``out`` only if every check passes.

    Raises:
        ValueError: the module (or a submodule) is in training mode, or no frames.
        ExportCheckError: a check failed (message: which check, the numbers); no file.
    """
    if _in_training_mode(module):
        raise ValueError("the model is in training mode (dropout/batch-norm behave differently); "
                         "call .eval() on it before exporting")
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to check the export on; pass --frames FILE (a trajectory or a dataset .npz)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.checking-{os.getpid()}.pt"
    try:
        log(f"latentcv export: scripting {card.name} ({card.dtype}, outputs {','.join(card.output_names)})")
        save_deployable(copy.deepcopy(module), card, tmp)  # save_deployable casts in place
        log(f"latentcv export: checking on {len(frames)} held-out frame(s) "
            f"({min(f.n_atoms for f in frames)}-{max(f.n_atoms for f in frames)} atoms): "
            "eager vs scripted vs C++ core, gradients vs finite differences")
        checks = run_checks(module, tmp, frames, card.dtype, log)
        for c in checks:
            log(c.line())
        failed = [c for c in checks if c.fatal and not c.ok]
        if failed:
            raise ExportCheckError(
                "export refused, self-check failed: "
                + "; ".join(f"{c.name}: max rel {c.max_rel:.3e} > tolerance {c.tolerance:.0e} (max abs {c.max_abs:.3e})"
                            for c in failed)
                + ". The model is not smooth/deterministic enough for deployment or the export is broken; "
                  "nothing was written")
        metadata = dict(torch.jit.load(str(tmp)).metadata())
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    log(f"latentcv export: wrote {out}")
    return ExportResult(out, metadata, checks)


def _base_dir(checkpoint: Path, output_dir: str) -> Path:
    """The folder the training config's relative paths were relative to: the checkpoint
    sits in ``base_dir / output_dir``."""
    od = Path(output_dir)
    ck_dir = checkpoint.resolve().parent
    if od.is_absolute():
        return ck_dir
    parts = [p for p in od.parts if p not in (".", "")]
    base = ck_dir
    for _ in parts:
        base = base.parent
    return base


def _load_training_frames(ck: dict, checkpoint: Path, config_path: Optional[str]) -> Tuple[list, object]:
    from latentcv.cv_models.config import Config, ConfigError, load_config
    from latentcv.cv_models.training import load_frames

    if config_path:
        cfg = load_config(config_path)
    else:
        if "config" not in ck:
            raise ValueError(f"checkpoint {checkpoint} records no training config; pass --config CONFIG or --frames FILE")
        d = ck["config"]
        cfg = Config.from_dict(d, base_dir=str(_base_dir(checkpoint, d.get("training", {}).get("output_dir", "."))))
    try:
        return load_frames(cfg), cfg
    except (FileNotFoundError, OSError, ConfigError) as exc:
        raise FileNotFoundError(
            f"cannot read the training data of {checkpoint} ({exc}); pass --config CONFIG (the training config, "
            "for its relative paths) or --frames FILE (frames to check on and to estimate SIGMA from)") from exc


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, dtype: str = "float64",
                      check_frames: str | os.PathLike | Sequence | None = None, config: Optional[str] = None,
                      name: Optional[str] = None, max_check_frames: int = MAX_CHECK_FRAMES,
                      log: Callable[[str], None] = print, length_unit: Optional[str] = None,
                      unit_length: Optional[float] = None, species_masses: Optional[Sequence[float]] = None) -> Path:
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
        species_masses: mass of each species index in the engine's mass unit (amu; reduced
            for lj): LATENT_CV then checks every atom's mass against the species pattern.
    Returns:
        the path written.
    """
    from latentcv.cv_models.training import CHECKPOINT_VERSION, load_checkpoint, load_encoder, split_frames

    torch.set_num_threads(1)
    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {tuple(DTYPES)}, not {dtype!r}")
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist; train first (`latentcv train CONFIG`) and "
                                "pass its output_dir/checkpoint.pt")
    try:
        ck = load_checkpoint(checkpoint)
    except Exception as exc:  # torch raises several types for non-checkpoint files
        raise ValueError(f"{checkpoint} is not a latentcv training checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ck, dict) or "model_state" not in ck or "model_config" not in ck:
        raise ValueError(f"{checkpoint} is not a latentcv training checkpoint (no model_state/model_config); "
                         "pass the checkpoint.pt written by `latentcv train`")
    if not ck.get("centroids"):
        raise ValueError(f"checkpoint {checkpoint} has no crystal/melt centroids: export the final checkpoint.pt of a "
                         "finished run (not checkpoint_last/_best), trained on frames labelled crystal and melt")
    try:
        encoder = load_encoder(checkpoint)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"checkpoint {checkpoint} does not fit this latentcv's encoder ({first}); it was written by "
                         "another version of the model code: retrain with `latentcv train CONFIG`") from exc
    log(f"latentcv export: loaded {checkpoint} (latent_dim {encoder.latent_dim}, "
        f"{encoder.atoms_per_molecule} atom(s)/molecule, cutoff {encoder.cutoff:g})")
    if species_masses:
        n_species = int(encoder.species.max()) + 1 if encoder.species.numel() else 1
        if len(species_masses) < n_species or not all(m > 0 for m in species_masses):
            raise ValueError(f"--species-masses needs one positive mass per species index (the model has "
                             f"{n_species}: pattern {encoder.species.tolist()})")
    scale = 1.0
    if length_unit is not None or unit_length is not None:
        if length_unit not in PHYSICAL_MODEL_LENGTH_UNITS or not (unit_length or 0) > 0:
            raise ValueError("--length-unit (A or nm) and --unit-length (the reduced unit sigma in that unit, > 0) "
                             "go together")
        scale = float(unit_length)
    module = LatentCVModule(encoder, length_scale=scale).eval()

    if check_frames is None:
        frames, cfg = _load_training_frames(ck, checkpoint, config)
        _, held_out = split_frames(frames, cfg.data.n_blocks, cfg.data.val_fraction, cfg.training.seed, cfg.data.gap)
        source = "validation blocks of the training data"
        if not held_out:
            held_out, source = frames, "training frames (the split held none out)"
        sigma_frames = frames
    else:
        frames = frames_from_file(check_frames) if isinstance(check_frames, (str, os.PathLike)) else list(check_frames)
        held_out, source, sigma_frames = frames, f"--frames {check_frames}" if isinstance(check_frames, (str, os.PathLike)) else "given frames", frames
    if not frames:
        raise ValueError("no frames found to check the export on; pass --frames FILE")
    units = sorted({f.length_unit for f in frames})
    if len(units) != 1:
        raise ValueError(f"the frames mix length units {units}; a model has one length unit")
    if scale != 1.0:
        if units != ["lj"]:
            raise ValueError(f"--length-unit/--unit-length rescale models trained in reduced (lj) units; these frames "
                             f"are in {units[0]}")
        units = [length_unit]
        held_out = [dataclasses.replace(f, positions=f.positions * scale, cell=f.cell * scale,
                                        length_unit=length_unit) for f in held_out]
        log(f"latentcv export: deploying in {length_unit} with the reduced length unit = {scale:g} {length_unit}")
    a = encoder.atoms_per_molecule
    for f in held_out:
        if f.n_atoms % a:
            raise ValueError(f"frame {f.trajectory}:{f.index} has {f.n_atoms} atoms, not whole molecules of {a} atoms "
                             "(the model's atoms_per_molecule); check --frames")
    check = _select_check_frames(held_out, max_check_frames)
    log(f"latentcv export: self-check frames: {len(check)} from the {source}")
    hints, melt_frames, which = sigma_hints(module, sigma_frames)
    n_sigma = len(melt_frames)
    hint_molecules = float(np.mean([f.n_molecules for f in melt_frames])) if melt_frames else 0.0
    names = module.output_names()
    log("latentcv export: SIGMA hints (half the std over " + f"{n_sigma} {which} frames): "
        + ", ".join(f"{n}={h:.4g}" for n, h in zip(names, hints)))

    import latentcv.cv_models

    fmt = lambda xs: ",".join(repr(float(x)) for x in xs)  # noqa: E731
    provenance = {
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_sha256": _file_sha256(checkpoint),
        "checkpoint_version": ck.get("version", CHECKPOINT_VERSION),
        "config": ck.get("config"),
        "model_config": ck.get("model_config"),
        "data_fingerprint": data_fingerprint(frames),
        "n_frames": len(frames),
        "split": ck.get("split"),
        "summary": ck.get("summary"),
        "self_check_frames": source,
        "versions": {"latentcv": latentcv.cv_models.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    card = ModelCard(
        name=name or checkpoint.resolve().parent.name or "latentcv",
        length_unit=units[0],
        dtype=dtype,
        atoms_per_molecule=a,
        cutoff=float(module.cutoff),
        output_names=names,
        species=[int(s) for s in encoder.species.tolist()],
        description=("latentcv hierarchical graph autoencoder: z0..z{d-1} latent coordinates; proj = projection on "
                     "the melt->crystal centroid axis (melt 0, crystal 1); dcrys = distance to the crystal centroid "
                     "in units of the centroid separation; n_crystal = number of crystal-like molecules"),
        provenance=provenance,
        extra={
            "latent_dim": str(encoder.latent_dim),
            "crystal_centroid": fmt(module.crystal_centroid.tolist()),
            "melt_centroid": fmt(module.melt_centroid.tolist()),
            "sigma_hint": fmt(hints),
            "sigma_hint_source": f"0.5 x std over {n_sigma} {which} frames of the training data",
            "sigma_hint_molecules": repr(hint_molecules),
            "extensive_outputs": "n_crystal",
            "r_on": repr(float(encoder.r_on)),
            "molecule_extent": repr(scale * molecule_extent(sigma_frames, a)) if a > 1 else "",
            "length_scale": repr(scale),
            **({"species_masses": fmt(species_masses)} if species_masses else {}),
            "data_fingerprint": provenance["data_fingerprint"],
        },
    )
    return export_model(module, card, out, check, log=log).path
