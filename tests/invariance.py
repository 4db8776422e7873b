"""Reusable symmetry checks for any latentcv encoder or layer stack (test helper).

``check_invariance(fn, positions, cell, atoms_per_molecule, dtype)`` evaluates
``fn(positions, cell) -> Tensor`` on a frame and on transformed copies of it —
translation, rotation, reflection, permutation of molecules, permutation of identical
atoms within each molecule, random periodic image of every atom, equivalent triclinic
cell vectors (a' = a + b, and a' = a - c) — and asserts equal outputs to the tolerance
of the dtype (float64: 1e-10, float32: 1e-5, relative to the output scale).
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np
import torch
from torch import Tensor

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def rotation(seed: int, reflect: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    if reflect:
        q = q @ np.diag([1.0, 1.0, -1.0])
    return q


def transforms(positions: np.ndarray, cell: np.ndarray, a: int, seed: int = 0) -> Dict[str, tuple]:
    """name -> (positions, cell) of every symmetry-equivalent copy (float64 numpy)."""
    rng = np.random.default_rng(seed)
    m = positions.shape[0] // a
    out = {}
    out["translation"] = (positions + rng.standard_normal(3) * 3.7, cell)
    for name, rot in (("rotation", rotation(seed)), ("reflection", rotation(seed + 1, reflect=True))):
        out[name] = (positions @ rot.T, cell @ rot.T)
    perm = rng.permutation(m)
    out["molecule_permutation"] = (positions.reshape(m, a, 3)[perm].reshape(-1, 3), cell)
    if a > 1:
        atom_perm = np.roll(np.arange(a), 1)
        out["atom_permutation"] = (positions.reshape(m, a, 3)[:, atom_perm].reshape(-1, 3), cell)
    shifts = rng.integers(-2, 3, size=(positions.shape[0], 3)).astype(float)
    out["periodic_images"] = (positions + shifts @ cell, cell)
    c2 = cell.copy()
    c2[0] = cell[0] + cell[1]
    out["cell_a_plus_b"] = (positions, c2)
    c3 = cell.copy()
    c3[0] = cell[0] - cell[2]
    c3[1] = cell[1] + cell[2]
    out["cell_mixed"] = (positions, c3)
    return out


def check_invariance(
    fn: Callable[[Tensor, Tensor], Tensor],
    positions: np.ndarray,
    cell: np.ndarray,
    atoms_per_molecule: int,
    dtype: torch.dtype,
    seed: int = 0,
) -> Dict[str, float]:
    """Assert ``fn`` is invariant under every transform; returns the errors."""

    def run(p, c):
        return fn(torch.tensor(p, dtype=dtype), torch.tensor(c, dtype=dtype)).detach().to(torch.float64)

    ref = run(positions, cell)
    scale = max(1.0, float(ref.abs().max()))
    errs = {}
    for name, (p, c) in transforms(positions, cell, atoms_per_molecule, seed).items():
        errs[name] = float((run(p, c) - ref).abs().max()) / scale
    bad = {k: v for k, v in errs.items() if not v <= TOL[dtype]}
    assert not bad, f"not invariant ({dtype}): {bad}"
    return errs


def script_roundtrip(module: torch.nn.Module, args: tuple, tmp_path, atol: float = 1e-12) -> None:
    """script -> save -> load -> outputs equal to the eager module's."""
    sm = torch.jit.script(module)
    path = str(tmp_path / f"{type(module).__name__}.pt")
    torch.jit.save(sm, path)
    loaded = torch.jit.load(path)
    ref = module(*args)
    got = loaded(*args)
    if isinstance(ref, tuple):
        for r, g in zip(ref, got):
            torch.testing.assert_close(g, r, atol=atol, rtol=0)
    else:
        torch.testing.assert_close(got, ref, atol=atol, rtol=0)
