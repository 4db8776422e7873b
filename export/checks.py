"""The self-checks of ``latentcv export``, and the checked write (:func:`export_model`).

1. eager module vs scripted file vs the C++ core (``latentcv.cv_models.native.core``) on
   held-out frames: values and gradients agree to round-off of the model's dtype;
2. for float32 models, the float32 values stay close to the float64 eager values;
3. the C++ gradients (positions and cell) agree with central finite differences of the
   float64 eager model on one small frame.

The file is first written under a temporary name next to the target, checked there,
then renamed: a failed check leaves no file behind (and no partial one ever exists).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from latentcv.cv_models.atomic_write import WriteError

from .deploy import DTYPES, MODEL_FORMATS, ModelCard, load_deployable, read_metadata, save_deployable
from .module import LatentCVModule

__all__ = [
    "TOLERANCES",
    "CheckResult",
    "ExportResult",
    "ExportCheckError",
    "run_checks",
    "export_model",
    "select_check_frames",
]

# relative tolerances of the self-checks, per model dtype (see docs/export.md)
TOLERANCES: Dict[str, Dict[str, float]] = {
    "float64": {"values": 1e-10, "gradients": 1e-10, "vs_float64": 1e-10, "finite_differences": 1e-5},
    "float32": {"values": 1e-4, "gradients": 1e-3, "vs_float64": 1e-3, "finite_differences": 1e-2},
}
DCRYS_EPS2 = 1e-4  # dcrys >= 0.01: quadratic, not a cone, within ~0.01 separation of the crystal centroid


class ExportCheckError(RuntimeError):
    """A self-check of ``latentcv export`` failed; the message names the check and numbers."""


def _graph(module: nn.Module, pos: Tensor, cell: Tensor, cutoff: float) -> Tuple[Tensor, Tensor]:
    """The pair list on the centres of the module's own ``molecule_centers`` (the contract's
    method, in the module's input length unit)."""
    from latentcv.cv_models.graphs import neighbor_list

    with torch.no_grad():
        c = module.molecule_centers(pos.detach(), cell.detach())
        ei, sh = neighbor_list(c, cell.detach(), cutoff)
    return ei, sh.to(pos.dtype)


def _eager(
    module: nn.Module, positions: np.ndarray, cell: np.ndarray, dtype: torch.dtype, gradients: bool, cutoff: float
) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
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
        return (
            f"  {self.name:42s} max abs {self.max_abs:.3e}  max rel {self.max_rel:.3e}  "
            f"(tolerance {self.tolerance:.0e})  {status}{'  ' + self.detail if self.detail else ''}"
        )


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and measured."""

    path: Path
    metadata: Dict[str, str]
    checks: List[CheckResult] = field(default_factory=list)


def _compare(
    name: str,
    a: np.ndarray,
    ref: np.ndarray,
    tol: float,
    floor: np.ndarray | float = 1e-12,
    names: Optional[Sequence[str]] = None,
    fatal: bool = True,
) -> CheckResult:
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


def select_check_frames(frames: Sequence, n: int) -> list:
    frames = list(frames)
    if len(frames) <= n:
        return frames
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in idx]


def run_checks(
    module: LatentCVModule, path: Path, frames: Sequence, dtype_name: str, log: Callable[[str], None] = print
) -> List[CheckResult]:
    """All self-checks of a candidate model file ``path`` (written from ``module``) on
    ``frames``; returns the results (the caller decides; see :func:`export_model`)."""
    from latentcv.cv_models.native import core as native

    tol = TOLERANCES[dtype_name]
    dtype = DTYPES[dtype_name]
    eager = copy.deepcopy(module).to(dtype).eval()
    eager64 = copy.deepcopy(module).to(torch.float64).eval()
    scripted = load_deployable(path)  # TorchScript, or an AOTInductor package's Python reader
    compiled = "AOTI package" if Path(path).suffix == MODEL_FORMATS["aoti"] else "scripted"
    core = native.Model(str(path), device="cpu", threads=1, warmup=False)
    if list(core.output_names) != module.output_names():
        raise ExportCheckError(
            f"check 'output names': C++ core reads {list(core.output_names)}, module has {module.output_names()}"
        )
    rc = float(module.cutoff)
    ev, eg, ec, sv, cv_, cg, cc, e64 = [], [], [], [], [], [], [], []
    for f in frames:
        v, gp, gc = _eager(eager, f.positions, f.cell, dtype, True, rc)
        ev.append(v)
        eg.append(gp)
        ec.append(gc)
        sv.append(_eager(scripted, f.positions, f.cell, dtype, False, rc)[0])
        v, gp, gc = core.evaluate(
            np.ascontiguousarray(f.positions, dtype=np.float64),
            np.ascontiguousarray(f.cell, dtype=np.float64),
            gradients=True,
        )
        cv_.append(v)
        cg.append(gp)
        cc.append(gc)
        if dtype_name != "float64":
            e64.append(_eager(eager64, f.positions, f.cell, torch.float64, False, rc)[0])
    ev, sv, cv_ = np.array(ev), np.array(sv), np.array(cv_)
    names = module.output_names()
    checks = [
        _compare(f"values: {compiled} vs eager", sv, ev, tol["values"], names=names),
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
        checks.append(
            _compare(
                f"values: {dtype_name} C++ vs float64 eager",
                cv_,
                np.array(e64),
                tol["vs_float64"],
                names=names,
                fatal=False,
            )
        )
    checks += _finite_difference_check(eager64, core, min(frames, key=lambda f: f.n_atoms), names, dtype_name, tol)
    return checks


def _finite_difference_check(
    eager64: LatentCVModule, core, frame, names: Sequence[str], dtype_name: str, tol: Dict[str, float]
) -> List[CheckResult]:
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
        return CheckResult(
            name, float(diff.max()), float(rel.max()), tolerance, f"{what}, worst output: {worst}", fatal
        )

    if dtype_name == "float64":
        return [compare("gradients: C++ vs finite differences", cgp, cgc, tol["finite_differences"], True)]
    return [
        compare(
            "gradients: float64 eager vs finite differences",
            egp,
            egc,
            TOLERANCES["float64"]["finite_differences"],
            True,
        ),
        compare(f"gradients: {dtype_name} C++ vs finite differences", cgp, cgc, tol["finite_differences"], False),
    ]


def _in_training_mode(module: nn.Module) -> bool:
    return any(m.training for m in module.modules())


def export_model(
    module: LatentCVModule,
    card: ModelCard,
    out: str | os.PathLike,
    frames: Sequence,
    log: Callable[[str], None] = print,
    model_format: str = "torchscript",
) -> ExportResult:
    """Check ``module`` (eager vs scripted vs C++ core, gradients vs finite differences)
    on ``frames`` and write it to ``out`` only if every check passes.

    Raises:
        ValueError: the module (or a submodule) is in training mode, or no frames.
        ExportCheckError: a check failed (message: which check, the numbers); no file.
    """
    if _in_training_mode(module):
        raise ValueError(
            "the model is in training mode (dropout/batch-norm behave differently); call .eval() on it before exporting"
        )
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to check the export on; pass --frames FILE (a trajectory or a dataset .npz)")
    out = Path(out)
    suffix = MODEL_FORMATS.get(model_format)
    if suffix is None:
        raise ValueError(f"--format must be one of {tuple(MODEL_FORMATS)}, not {model_format!r}")
    if (out.suffix == ".pt2") != (model_format == "aoti"):
        raise ValueError(
            f"{out}: a {model_format} model file must end in {suffix} (the C++ core tells the "
            f"formats apart by it); write -o {out.with_suffix(suffix)}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.checking-{os.getpid()}{suffix}"
    had_previous = out.is_file()
    try:
        what = "compiling (AOTInductor, ~1 min per graph)" if model_format == "aoti" else "scripting"
        log(f"latentcv export: {what} {card.name} ({card.dtype}, outputs {','.join(card.output_names)})")
        try:
            save_deployable(copy.deepcopy(module), card, tmp, model_format)  # save_deployable casts in place
        except OSError as exc:
            raise WriteError.of("model", out, exc, had_previous) from exc
        log(
            f"latentcv export: checking on {len(frames)} held-out frame(s) "
            f"({min(f.n_atoms for f in frames)}-{max(f.n_atoms for f in frames)} atoms): "
            "eager vs scripted vs C++ core, gradients vs finite differences"
        )
        checks = run_checks(module, tmp, frames, card.dtype, log)
        for c in checks:
            log(c.line())
        failed = [c for c in checks if c.fatal and not c.ok]
        if failed:
            raise ExportCheckError(
                "export refused, self-check failed: "
                + "; ".join(
                    f"{c.name}: max rel {c.max_rel:.3e} > tolerance {c.tolerance:.0e} (max abs {c.max_abs:.3e})"
                    for c in failed
                )
                + ". The model is not smooth/deterministic enough for deployment or the export is broken; "
                "nothing was written"
            )
        metadata = read_metadata(tmp)
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise WriteError.of("model", out, exc, had_previous) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    log(f"latentcv export: wrote {out}")
    return ExportResult(out, metadata, checks)
