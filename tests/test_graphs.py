"""Graphs: switching function, molecule centres, cell-list neighbour search."""

import numpy as np
import pytest
import torch

from latentcv.cv_models import graphs as g

torch.set_num_threads(1)
D = torch.float64

CELLS = {
    "orthorhombic": np.diag([3.0, 3.6, 4.1]),
    "triclinic": np.array([[3.0, 0.0, 0.0], [1.1, 3.2, 0.0], [-0.8, 0.9, 2.9]]),
}


def canon(ei, sh):
    return sorted(zip(ei[0].tolist(), ei[1].tolist(), [tuple(int(round(v)) for v in r) for r in sh.tolist()]))


@pytest.mark.parametrize("cell_name", list(CELLS))
@pytest.mark.parametrize("cutoff", [0.9, 1.7, 2.6, 4.5])
def test_neighbor_list_matches_brute_force(cell_name, cutoff):
    cell = torch.tensor(CELLS[cell_name], dtype=D)
    rng = np.random.default_rng(int(cutoff * 10))
    # points anywhere (outside the cell too); cutoffs beyond half the box and the box
    c = torch.tensor(rng.random((11, 3)) @ CELLS[cell_name] + rng.normal(size=(11, 3)) * 4, dtype=D)
    ei, sh = g.neighbor_list(c, cell, cutoff)
    assert ei.dtype == torch.int64 and sh.dtype == D and sh.shape == (ei.shape[1], 3)
    assert canon(ei, sh) == canon(*g.brute_force_neighbor_list(c, cell, cutoff))
    d = g.edge_vectors(c, cell, ei, sh)
    assert float(d.norm(dim=1).max()) < cutoff
    # full list: (i, j, n) <-> (j, i, -n)
    fwd = set(canon(ei, sh))
    assert all((j, i, tuple(-x for x in n)) in fwd for i, j, n in fwd)


def test_neighbor_list_scales_linearly():
    rng = np.random.default_rng(0)
    for n, box in ((500, 8.0), (4000, 16.0)):
        c = torch.tensor(rng.random((n, 3)) * box, dtype=D)
        ei, _ = g.neighbor_list(c, torch.eye(3, dtype=D) * box, 1.5)
        # ~ 4/3 pi 1.5^3 * density neighbours per point, independent of N
        per = ei.shape[1] / n
        assert 10 < per < 18


def test_switch_values_and_derivatives():
    r = torch.linspace(0.0, 2.5, 2501, dtype=D, requires_grad=True)
    s = g.switch(r, 2.0, 1.2)
    (ds,) = torch.autograd.grad(s.sum(), r)
    assert torch.all(s[r <= 1.2] == 1.0) and torch.all(s[r >= 2.0] == 0.0)
    assert torch.all(ds <= 0)
    # value and first derivative continuous: neighbouring grid points differ by O(h)
    s = s.detach()
    assert float((s[1:] - s[:-1]).abs().max()) < 3e-3
    assert float((ds[1:] - ds[:-1]).abs().max()) < 1e-2
    at = torch.tensor([1.2, 2.0], dtype=D, requires_grad=True)
    (d_at,) = torch.autograd.grad(g.switch(at, 2.0, 1.2).sum(), at)
    assert float(d_at.abs().max()) == 0.0


@pytest.mark.parametrize("cell_name", list(CELLS))
def test_molecule_centers_whole_across_pbc(cell_name):
    cell = torch.tensor(CELLS[cell_name], dtype=D)
    rng = np.random.default_rng(1)
    centres = torch.tensor(rng.random((5, 3)) @ CELLS[cell_name], dtype=D)
    offs = torch.tensor(rng.normal(size=(5, 3, 3)) * 0.3, dtype=D)
    offs = offs - offs.mean(1, keepdim=True)
    pos = (centres.unsqueeze(1) + offs).reshape(-1, 3)
    shifted = pos + torch.tensor(rng.integers(-2, 3, size=(15, 3)), dtype=D) @ cell
    c = g.molecule_centers(shifted, cell, 3)
    # equal up to a lattice vector
    frac = (c - centres) @ torch.linalg.inv(cell)
    torch.testing.assert_close(frac, torch.round(frac), atol=1e-12, rtol=0)
    cc, u = g.molecule_offsets(shifted, cell.unsqueeze(0), torch.zeros(5, dtype=torch.long), 3)
    torch.testing.assert_close(cc, c, atol=0, rtol=0)
    torch.testing.assert_close(u.reshape(5, 3, 3), offs, atol=1e-12, rtol=0)


def test_intra_molecular_edges():
    ei = g.intra_molecular_edges(3, 3, torch.device("cpu"))
    assert ei.shape == (2, 3 * 6)
    assert torch.all(ei[0] // 3 == ei[1] // 3) and torch.all(ei[0] != ei[1])
    assert g.intra_molecular_edges(4, 1, torch.device("cpu")).shape == (2, 0)


def test_graph_functions_script(tmp_path):
    cell = torch.tensor(CELLS["triclinic"], dtype=D)
    c = torch.tensor(np.random.default_rng(2).random((9, 3)) * 3, dtype=D)
    for fn in (
        g.switch,
        g.molecule_centers,
        g.molecule_offsets,
        g.minimum_image,
        g.neighbor_list,
        g.frame_graph,
        g.edge_vectors,
        g.intra_molecular_edges,
    ):
        torch.jit.script(fn)
    nl = torch.jit.script(g.neighbor_list)
    assert canon(*nl(c, cell, 2.0)) == canon(*g.neighbor_list(c, cell, 2.0))
