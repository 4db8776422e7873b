"""``n_nucleus`` (``NucleusCount``) and ``n_largest`` (``LargestNucleus``): what they must count and must not, on fcc lattices with
chosen per-molecule crystal-likeness p: a compact nucleus counts (its interior fully), the
same number of scattered crystal-like molecules does not, and chance crystal-like
molecules in a "melt" give ~0 at every box size, where ``n_crystal = sum p`` grows with N.
The smoothness, invariances and gradients of the layer are checked by the model test
mixin (tests/test_model_checks.py::TestNucleusCount)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentcv.cv_models.graphs import frame_graph, switch
from latentcv.cv_models.layers import LargestNucleus, NucleusCount
from latentcv.cv_models.synthetic import fcc_positions

CUTOFF, R_ON = 1.5, 1.2  # the LJ demo model's molecule graph
LATTICE = (4 / 0.9) ** (1 / 3)  # fcc at reduced density 0.9: 12 neighbours at 1.16, next shell at 1.64


def fcc(cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, cell = fcc_positions(cells, LATTICE)
    return torch.tensor(x), torch.tensor(cell)


def nucleus_and_count(x: torch.Tensor, cell: torch.Tensor, p: torch.Tensor) -> tuple[float, float]:
    ei, shift = frame_graph(x, cell, 1, CUTOFF)
    d = x[ei[1]] + shift @ cell - x[ei[0]]
    w = switch(d.norm(dim=1), CUTOFF, R_ON)
    batch = torch.zeros(len(x), dtype=torch.long)
    return float(NucleusCount()(p, ei, w, batch, 1)[0]), float(p.sum())


def sphere(x: torch.Tensor, cell: torch.Tensor, radius: float, where: float = 0.5) -> torch.Tensor:
    """p = 1 within ``radius`` of the point ``where`` × the box diagonal, else 0."""
    centre = cell.diagonal() * where
    return ((x - centre).norm(dim=1) < radius).double()


def largest_and_nucleus(x: torch.Tensor, cell: torch.Tensor, p: torch.Tensor) -> tuple[float, float]:
    """(n_largest, n_nucleus) as the LJ demo model computes them (R = 4 × cutoff, ramp = cutoff)."""
    ei, shift = frame_graph(x, cell, 1, CUTOFF)
    w = switch((x[ei[1]] + shift @ cell - x[ei[0]]).norm(dim=1), CUTOFF, R_ON)
    share = NucleusCount().contributions(p, ei, w)
    batch = torch.zeros(len(x), dtype=torch.long)
    largest = LargestNucleus(4 * CUTOFF, CUTOFF)(share, x, cell.unsqueeze(0), batch, 1)
    return float(largest[0]), float(share.sum())


def test_largest_reads_one_of_two_nuclei_and_all_of_one_twice_as_large():
    """Two equal nuclei far apart read as one of them; one nucleus of twice the molecules
    reads its size; n_nucleus sums them (two of n = one of 2n)."""
    x, cell = fcc(10)  # 4000 molecules, box 16.4 σ: the nuclei's centres 14.2 σ apart > 2R
    one = sphere(x, cell, 3.0, 0.25)
    two = torch.clamp(one + sphere(x, cell, 3.0, 0.75), max=1.0)
    double = sphere(x, cell, 3.0 * 2 ** (1 / 3), 0.5)
    (l_one, n_one), (l_two, n_two), (l_double, n_double) = (largest_and_nucleus(x, cell, p) for p in (one, two, double))
    assert n_two == pytest.approx(2 * n_one, rel=0.02)  # the sum: two of n read 2n
    assert l_two == pytest.approx(l_one, rel=0.05), (l_one, l_two)
    assert l_double == pytest.approx(n_double, rel=0.1), (l_double, n_double)
    assert l_two < 0.6 * l_double


def test_a_compact_nucleus_counts_and_grows_with_its_size():
    x, cell = fcc(8)  # 2048 molecules
    sizes, readings = [], []
    for radius in (1.5, 2.5, 3.5, 4.5, 5.5):
        p = sphere(x, cell, radius)
        n_nucleus, n_crystal = nucleus_and_count(x, cell, p)
        sizes.append(n_crystal)
        readings.append(n_nucleus)
    assert np.all(np.diff(readings) > 0), readings
    # the interior counts fully, the surface in part: most of a large nucleus
    assert 0.6 * sizes[-1] < readings[-1] <= sizes[-1], (sizes, readings)
    whole, _ = nucleus_and_count(x, cell, torch.ones(len(x), dtype=torch.float64))
    assert whole == pytest.approx(len(x), rel=0.01)  # the whole box


def test_scattered_crystal_like_molecules_are_not_a_nucleus():
    x, cell = fcc(8)
    compact = sphere(x, cell, 4.0)  # ~250 molecules; a random packing of isolated ones holds ~310
    scattered = torch.zeros(len(x), dtype=torch.float64)
    ei, _ = frame_graph(x, cell, 1, CUTOFF)
    neighbours = [set() for _ in range(len(x))]
    for i, j in ei.T.tolist():
        neighbours[i].add(j)
    order = np.random.default_rng(0).permutation(len(x))
    chosen = 0
    for i in order:  # no two chosen molecules are neighbours
        if chosen < compact.sum() and not any(scattered[j] > 0 for j in neighbours[i]):
            scattered[i] = 1.0
            chosen += 1
    n_compact, c_compact = nucleus_and_count(x, cell, compact)
    n_scattered, c_scattered = nucleus_and_count(x, cell, scattered)
    assert c_scattered == c_compact  # the same n_crystal
    assert n_scattered < 0.01 * n_compact, (n_scattered, n_compact)


@pytest.mark.parametrize("cells", [4, 8])
def test_chance_crystal_like_molecules_in_a_melt_read_zero_at_every_size(cells):
    """6.5 % of the molecules crystal-like at random (the false-positive rate of a melt's
    local labels, issue 21): n_crystal ~ 0.065 N, n_nucleus and n_largest ~ 0 at 256 and 2048 molecules."""
    x, cell = fcc(cells)
    rng = np.random.default_rng(cells)
    readings = []
    for _ in range(10):
        p = torch.tensor((rng.random(len(x)) < 0.065).astype(float))
        readings.append(nucleus_and_count(x, cell, p))
        readings[-1] += (largest_and_nucleus(x, cell, p)[0],)
    n_nucleus = np.array([r[0] for r in readings])
    n_crystal = np.array([r[1] for r in readings])
    n_largest = np.array([r[2] for r in readings])
    assert n_crystal.mean() > 0.04 * len(x)
    assert n_nucleus.mean() < 0.5 and n_nucleus.max() < 2.0, n_nucleus
    assert n_largest.max() < 1.0, n_largest
