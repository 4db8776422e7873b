"""Fixtures and markers shared by the test files.

- ``tiny_models``: the tiny trained models (tests/export_helpers.py), trained and exported
  once per session; ``coordination_model(**card)``: analytic coordination-CV model files,
  each written once.
- ``lmp``: a LAMMPS instance with latentcv's ``fix plumed`` loaded (tests/lammps_scaffold.py).
- the marker ``cuda`` skips a test, saying so, where torch sees no GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch

from tests.export_helpers import TinyModels
from tests.lammps_scaffold import lammps

NO_CUDA = "no CUDA device visible to torch on this machine: the GPU path was NOT checked here"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped, with the reason, without one)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("cuda") is not None and not torch.cuda.is_available():
        pytest.skip(NO_CUDA)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def coordination_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``coordination_model(**card)``: ``save_coordination_model(path, **card)``, once per card."""
    from latentcv.export.analytic import save_coordination_model

    root = tmp_path_factory.mktemp("coordination")
    written: dict[tuple, Path] = {}

    def model(**card) -> Path:
        key = tuple(sorted(card.items()))
        if key not in written:
            written[key] = save_coordination_model(root / f"coordination{len(written)}.pt", **card)
        return written[key]

    return model


@pytest.fixture
def lmp() -> Iterator:
    """LAMMPS in this process with ``fix plumed`` loaded; closed after the test."""
    with lammps() as handle:
        yield handle
