"""The reusable model test mixin: one set of checks for every layer and for the encoder.

Subclass :class:`ModelChecks` as ``class TestSomething(ModelChecks)`` and define

- ``build()``: the module, float64 on the CPU (seed it: the checks build it more than once);
- ``inputs()``: the arguments of its ``forward``, float64 tensors on the CPU (index tensors
  and ints as they are);
- ``symmetries(inputs)``: ``{name: Symmetry}``, each a transformed copy of the inputs and
  what the outputs must then be;
- ``differentiable``: positions in ``inputs()`` of the tensors checked by finite differences.

The subclass then runs, in float64 and float32, on the CPU and on a GPU where there is one:

- ``test_script_save_load``: ``torch.jit.script`` -> save -> load gives the eager outputs;
- ``test_symmetries``: every symmetry holds to the dtype's precision (relative to the
  output scale);
- ``test_finite_differences``: the autograd gradient of a fixed weighted sum of all outputs
  equals central differences of the same module in float64 (tests/gradcheck.py); in
  float32 the float32 gradient must agree to float32 precision. A layer that is not
  smooth (``TopKPool``) sets ``test_finite_differences = None``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from tests.gradcheck import check_gradient
from tests.invariance import TOL as VALUE_TOL

DTYPES = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]
#: the GPU only where torch sees one (tests/test_model_checks.py has one ``cuda`` test that says
#: so, skipped with its reason, on a machine without)
DEVICES = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.cuda)] if torch.cuda.is_available() else [])

# VALUE_TOL (tests/invariance.py): |difference| / output scale allowed between outputs that must be equal.
#: |numerical - analytic| / largest |gradient| allowed (float32: its gradient against float64 differences).
GRADIENT_TOL = {torch.float64: 1e-6, torch.float32: 2e-3}
FD_STEP = 1e-6


def as_outputs(out) -> List[Tensor]:
    """A module's output(s) as a list of tensors."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def unchanged(outputs: List[Tensor]) -> List[Tensor]:
    return outputs


@dataclass
class Symmetry:
    """A transformed copy of the inputs and the outputs it must give.

    ``expected(reference outputs)`` must equal ``observed(outputs of the copy)``
    (default: the outputs themselves, an invariance).
    """

    inputs: tuple
    expected: Callable[[List[Tensor]], List[Tensor]] = unchanged
    observed: Callable[[List[Tensor]], List[Tensor]] = field(default=unchanged)


def on(inputs: Sequence, dtype: torch.dtype, device: str) -> tuple:
    """Float tensors cast to ``dtype``, every tensor moved to ``device``; other values as they are."""
    return tuple(
        x.to(device=device, dtype=dtype if x.is_floating_point() else x.dtype) if isinstance(x, Tensor) else x
        for x in inputs
    )


def output_weights(outputs: List[Tensor]) -> List[Tensor]:
    """Fixed weights [same shapes] that fold every output into one scalar for the gradient checks."""
    weights, k = [], 0
    for o in outputs:
        n = o.numel()
        weights.append(torch.cos(0.7 * torch.arange(k, k + n, dtype=torch.float64)).view(o.shape))
        k += n
    return weights


def max_relative_difference(a: List[Tensor], b: List[Tensor]) -> float:
    """Largest |a - b| over all outputs, over the output scale max(1, max |a|)."""
    assert len(a) == len(b), f"{len(a)} outputs against {len(b)}"
    scale = max([1.0] + [float(x.detach().abs().max()) for x in a if x.numel()])
    worst = 0.0
    for x, y in zip(a, b):
        assert x.shape == y.shape, f"output shapes {tuple(x.shape)} and {tuple(y.shape)}"
        if x.numel():
            worst = max(worst, float((x.detach().double() - y.detach().double()).abs().max()))
    return worst / scale


class ModelChecks:
    """Mixin of the invariance, TorchScript and finite-difference checks (module docstring)."""

    differentiable: tuple = (0,)
    #: at most this many entries of each differentiable input are differentiated (chosen at random, fixed seed)
    fd_entries: int = 24

    def build(self) -> nn.Module:
        raise NotImplementedError

    def inputs(self) -> tuple:
        raise NotImplementedError

    def symmetries(self, inputs: tuple) -> Dict[str, Symmetry]:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def module_on(self, dtype: torch.dtype, device: str) -> nn.Module:
        return copy.deepcopy(self.build()).to(device=device, dtype=dtype).eval()

    def outputs(self, module: nn.Module, inputs: tuple) -> List[Tensor]:
        return as_outputs(module(*inputs))

    # ------------------------------------------------------------------ checks
    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_script_save_load(self, dtype: torch.dtype, device: str, tmp_path) -> None:
        module = self.module_on(dtype, device)
        inputs = on(self.inputs(), dtype, device)
        path = str(tmp_path / "module.pt")
        torch.jit.save(torch.jit.script(module), path)
        loaded = torch.jit.load(path, map_location=device)
        eager = self.outputs(module, inputs)
        diff = max_relative_difference(eager, self.outputs(loaded, inputs))
        assert diff <= VALUE_TOL[dtype], f"scripted, saved and loaded module differs from the eager one by {diff:.3g}"

    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_symmetries(self, dtype: torch.dtype, device: str) -> None:
        module = self.module_on(dtype, device)
        base = self.inputs()
        reference = self.outputs(module, on(base, dtype, device))
        cases = self.symmetries(base)
        assert cases, "no symmetry to check"
        errors = {}
        for name, sym in cases.items():
            got = sym.observed(self.outputs(module, on(sym.inputs, dtype, device)))
            errors[name] = max_relative_difference(sym.expected(reference), got)
        bad = {k: f"{v:.3g}" for k, v in errors.items() if not v <= VALUE_TOL[dtype]}
        assert not bad, f"symmetries broken ({dtype}, {device}): {bad}"

    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_finite_differences(self, dtype: torch.dtype, device: str) -> None:
        base = self.inputs()
        module = self.module_on(dtype, device)
        leaves = list(on(base, dtype, device))
        for k in self.differentiable:
            leaves[k] = leaves[k].detach().clone().requires_grad_(True)
        outs = self.outputs(module, tuple(leaves))
        weights = output_weights(outs)
        scalar = sum((o * w.to(device=o.device, dtype=o.dtype)).sum() for o, w in zip(outs, weights))
        grads = torch.autograd.grad(scalar, [leaves[k] for k in self.differentiable], allow_unused=True)
        analytic = [
            np.zeros(tuple(base[k].shape)) if g is None else g.detach().cpu().double().numpy()
            for k, g in zip(self.differentiable, grads)
        ]
        largest = max(float(np.abs(g).max()) for g in analytic)
        assert largest > 0, "the gradient is identically zero: the check would be empty"

        reference = self.module_on(torch.float64, "cpu")

        def folded(*arrays: np.ndarray) -> float:
            args = list(base)
            for k, a in zip(self.differentiable, arrays):
                args[k] = torch.tensor(a, dtype=torch.float64)
            with torch.no_grad():
                return float(sum((o * w).sum() for o, w in zip(self.outputs(reference, tuple(args)), weights)))

        rng = np.random.default_rng(0)
        entries = []
        for k in self.differentiable:
            every = list(np.ndindex(tuple(base[k].shape)))
            pick = rng.choice(len(every), size=min(self.fd_entries, len(every)), replace=False)
            entries.append([every[p] for p in sorted(pick)])
        check_gradient(
            folded,
            [base[k].numpy() for k in self.differentiable],
            analytic,
            eps=FD_STEP,
            entries=entries,
            rtol=GRADIENT_TOL[dtype],
            floor=largest,
            atol=1e-9 * max(1.0, abs(folded(*[base[k].numpy() for k in self.differentiable]))),
        )


# ---------------------------------------------------------------------- symmetry helpers
def relabel_nodes(inputs: tuple, perm: Tensor, node_args: Sequence[int], index_args: Sequence[int]) -> tuple:
    """Node k of the copy is node ``perm[k]``: node-indexed inputs gathered by ``perm``,
    node indices (edge lists, receivers) renamed to the new labels."""
    inverse = torch.argsort(perm)
    out = list(inputs)
    for k in node_args:
        out[k] = inputs[k][perm]
    for k in index_args:
        out[k] = inverse[inputs[k]]
    return tuple(out)


def reorder_edges(inputs: tuple, perm: Tensor, edge_args: Sequence[int], edge_index_args: Sequence[int] = ()) -> tuple:
    """The edges listed in another order: per-edge inputs gathered by ``perm`` (an edge
    list [2, E] along its second axis)."""
    out = list(inputs)
    for k in edge_args:
        out[k] = inputs[k][perm]
    for k in edge_index_args:
        out[k] = inputs[k][:, perm]
    return tuple(out)
