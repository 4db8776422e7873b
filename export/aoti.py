"""AOTInductor packages of a deployable model (``latentcv export --format aoti``;
docs/model-contract.md, "AOTInductor package").

One ``.pt2`` file holds three compiled graphs of the same module, each traced with
``make_fx`` (symbolic sizes), exported with ``torch.export`` (dynamic numbers of molecules
M and pairs P) and compiled by AOTInductor into C++ (CPU):

- ``values``: ``(positions [N,3], cell [3,3], edge_index [2,P], edge_shift [P,3]) -> [K]``;
- ``vjp``: the same inputs and ``weights [K]`` -> ``(values [K], d(w.s)/dpositions [N,3],
  d(w.s)/dcell [3,3])``: the one vector-Jacobian product the PLUMED action needs;
- ``centers``: ``(positions, cell) -> [M,3]``, the molecule centres the pair list is built on.

The metadata (the TorchScript file's ``metadata()``, contract version 3) is stored in the
``values`` graph (``aot_inductor.metadata``) and read by the C++ core's model_info.cpp.
The encoder is traced on its core-torch path (``fused = False``, ``traceable = True``):
latentcv's own operators have C++ autograd, which ``make_fx`` cannot trace with symbolic
sizes; the compiler fuses the same sums itself.

Compiling needs a C++ compiler at export time (the one torch's inductor finds: ``CXX`` or
``g++``); the package runs with libtorch alone.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

__all__ = ["AOTI_GRAPHS", "AOTI_SUFFIX", "save_aoti", "load_aoti", "is_aoti_file", "traceable_copy"]

AOTI_GRAPHS = ("values", "vjp", "centers")
AOTI_SUFFIX = ".pt2"


def is_aoti_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an AOTInductor package (by its suffix ``.pt2``)."""
    return Path(path).suffix == AOTI_SUFFIX


class _Values(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        return self.module(positions, cell, edge_index, edge_shift)


class _VectorJacobian(nn.Module):
    """``(values [K], grad_positions [N,3], grad_cell [3,3])`` of ``sum_k weights[k] s_k``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(
        self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor, weights: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor]:
        pos = positions.detach().requires_grad_(True)
        box = cell.detach().requires_grad_(True)
        with torch.enable_grad():
            out = self.module(pos, box, edge_index, edge_shift)
            gp, gc = torch.autograd.grad(out, (pos, box), weights)
        return out.detach(), gp, gc


class _Centers(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, positions: Tensor, cell: Tensor) -> Tensor:
        return self.module.molecule_centers(positions, cell)


def traceable_copy(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A frozen copy of ``module`` in ``dtype`` on its core-torch, traceable path (every
    submodule with ``fused`` gets ``fused = False``; with ``traceable``, ``traceable = True``)."""
    m = copy.deepcopy(module).to(dtype).cpu().eval()
    for sub in m.modules():
        if hasattr(sub, "fused"):
            sub.fused = False
        if hasattr(sub, "traceable"):
            sub.traceable = True
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def sample_inputs(module: nn.Module, atoms_per_molecule: int, dtype: torch.dtype) -> Tuple[Tensor, ...]:
    """A small frame to trace on: 4 x 4 x 4 molecules on a jittered cubic grid at 0.6
    cutoff spacing (every molecule has neighbours), its full pair list, weights [K]."""
    from latentcv.cv_models.graphs import neighbor_list

    gen = torch.Generator().manual_seed(0)
    side, a = 4, 0.6 * float(module.cutoff)
    grid = torch.stack(torch.meshgrid(*[torch.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    inner = 0.05 * a * torch.arange(atoms_per_molecule).reshape(1, -1, 1) * torch.tensor([1.0, 0.6, 0.0])
    pos = (grid * a + inner + 0.1 * a * torch.rand(grid.shape[0], 1, 3, generator=gen)).reshape(-1, 3).to(dtype)
    cell = torch.eye(3, dtype=dtype) * side * a
    with torch.no_grad():
        ei, sh = neighbor_list(module.molecule_centers(pos, cell), cell, float(module.cutoff))
    weights = torch.rand(len(module.output_names()), generator=gen).to(dtype)
    return pos, cell, ei, sh.to(dtype), weights


def _export(graph: nn.Module, args: Tuple[Tensor, ...], dynamic: List[object]) -> torch.export.ExportedProgram:
    """make_fx with symbolic sizes (autograd.grad becomes explicit backward ops), then
    torch.export with the dynamic dimensions ``dynamic`` (one entry per input)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(graph, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*args)
    return torch.export.export(gm, args, dynamic_shapes=tuple(dynamic), strict=False)


def _compile(ep: torch.export.ExportedProgram, metadata: Dict[str, str] | None) -> list:
    options = {"aot_inductor.package": True}
    if metadata is not None:
        options["aot_inductor.metadata"] = dict(metadata)
    return torch._inductor.aot_compile(ep.module(), ep.example_inputs[0], options=options)


def save_aoti(
    module: nn.Module, metadata: Dict[str, str], dtype: torch.dtype, atoms_per_molecule: int, path: str | os.PathLike
) -> Path:
    """Trace, export and compile ``module`` (a :class:`LatentCVModule`) into the package
    ``path`` (graphs :data:`AOTI_GRAPHS`, ``metadata`` in ``values``). Takes ~1 min per graph
    on one core; needs a C++ compiler."""
    m = traceable_copy(module, dtype)
    pos, cell, ei, sh, w = sample_inputs(m, atoms_per_molecule, dtype)
    molecules = torch.export.Dim("molecules", min=2)
    atoms = molecules * atoms_per_molecule if atoms_per_molecule > 1 else molecules
    pairs = torch.export.Dim("pairs", min=2)
    base = [{0: atoms}, None, {1: pairs}, {0: pairs}]
    files = {
        "values": _compile(_export(_Values(m), (pos, cell, ei, sh), base), metadata),
        "vjp": _compile(_export(_VectorJacobian(m), (pos, cell, ei, sh, w), base + [None]), None),
        "centers": _compile(_export(_Centers(m), (pos, cell), base[:2]), None),
    }
    from torch._inductor.package import package_aoti

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        package_aoti(str(staged), files)
        os.replace(staged, path)
    return path


class AotiModel:
    """A package loaded in Python (the reference reading of a ``.pt2``): ``model(positions,
    cell, edge_index, edge_shift) -> [K]``, ``vjp(..., weights)``, ``molecule_centers``,
    ``metadata()`` -- the TorchScript file's methods."""

    def __init__(self, path: str | os.PathLike) -> None:
        from torch._inductor.package import load_package

        self.path = str(path)
        self._graphs = {name: load_package(self.path, name) for name in AOTI_GRAPHS}

    def __call__(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        return self._graphs["values"](positions, cell, edge_index, edge_shift)

    def vjp(
        self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor, weights: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor]:
        return tuple(self._graphs["vjp"](positions, cell, edge_index, edge_shift, weights))

    def molecule_centers(self, positions: Tensor, cell: Tensor) -> Tensor:
        return self._graphs["centers"](positions, cell)

    def metadata(self) -> Dict[str, str]:
        meta = self._graphs["values"].get_metadata()
        return {k: v for k, v in meta.items() if not k.startswith("AOTI_")}


def load_aoti(path: str | os.PathLike) -> AotiModel:
    """Load an AOTInductor package in Python."""
    return AotiModel(path)
