"""The CUDA path of the C++ core: runs only where torch sees a GPU (a lent device machine)."""

from __future__ import annotations

import numpy as np
import pytest

from chain_helpers import TRICLINIC, random_frame
from latentcv.cv_models.native import core as native

pytestmark = pytest.mark.cuda  # skipped, saying so, where torch sees no GPU (tests/conftest.py)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_cuda_matches_cpu(coordination_model, dtype, tol):
    path = coordination_model(atoms_per_molecule=2, cutoff=1.5, dtype=dtype)
    cpu = native.Model(str(path), device="cpu")
    gpu = native.Model(str(path), device="cuda")
    assert gpu.device.startswith("cuda")
    positions = random_frame(64, TRICLINIC, seed=2)
    for a, b in zip(cpu.evaluate(positions, TRICLINIC), gpu.evaluate(positions, TRICLINIC)):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    auto = native.Model(str(path), device="auto")
    assert auto.device.startswith("cuda")
