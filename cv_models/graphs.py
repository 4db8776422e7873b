"""Graphs of latentcv: molecule centres, switching function, neighbour lists.

Everything here works on periodic cells in all three directions, orthorhombic or
triclinic. ``cell`` always has the lattice vectors a, b, c as *rows* (the convention of
``Frame`` and of docs/model-contract.md), so a point with fractional coordinates ``s``
sits at ``s @ cell``.

The functions that the exported encoder calls (``molecule_centers``, ``switch``,
``intra_molecular_edges``, ``edge_vectors``, ``neighbor_list``) are TorchScript-scriptable
and use core PyTorch ops only. ``brute_force_neighbor_list`` is an O(N^2) reference for
tests.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    "switch",
    "minimum_image",
    "molecule_centers",
    "molecule_offsets",
    "frame_graph",
    "intra_molecular_edges",
    "neighbor_list",
    "brute_force_neighbor_list",
    "edge_vectors",
    "perpendicular_widths",
]


def switch(r: Tensor, cutoff: float, r_on: float) -> Tensor:
    """Smooth switching function, 1 for ``r <= r_on`` and 0 for ``r >= cutoff``.

    In between, with ``x = (r - r_on) / (cutoff - r_on)``,
    ``s(x) = 1 - 10 x^3 + 15 x^4 - 6 x^5`` (the quintic "smoothstep"): value, first and
    second derivative are continuous everywhere, and s is exactly 0 at and beyond the
    cutoff.

    Args:
        r: distances, any shape, length unit of the model.
        cutoff: D_t, where the switch reaches 0.
        r_on: where the switch starts to fall from 1 (``0 <= r_on < cutoff``).
    Returns:
        Tensor of the shape of ``r`` with values in [0, 1].
    """
    x = ((r - r_on) / (cutoff - r_on)).clamp(0.0, 1.0)
    x3 = x * x * x
    return 1.0 - x3 * (10.0 - 15.0 * x + 6.0 * x * x)


def minimum_image(d: Tensor, cell: Tensor, inv_cell: Optional[Tensor] = None) -> Tensor:
    """Wrap displacement vectors ``d[..., 3]`` to the nearest image by fractional rounding.

    Exact for displacements shorter than half the smallest perpendicular width of the cell
    (always the case for bonds inside a molecule). The image integers are taken out of the
    graph (``detach``), so the derivative w.r.t. ``cell`` is that of ``d - n @ cell``.

    Args:
        d: [..., 3] displacements.
        cell: [3, 3] (rows a, b, c) or [..., 3, 3] broadcasting with the leading shape of ``d``.
        inv_cell: ``inv(cell)`` when the caller has it (one inverse per frame, not per vector).
    """
    if inv_cell is None:
        inv = torch.linalg.inv(cell)
    else:
        inv = inv_cell
    if cell.dim() == 2:
        n = torch.round(d @ inv).detach()
        return d - n @ cell
    s = torch.matmul(d.unsqueeze(-2), inv).squeeze(-2)
    n = torch.round(s).detach()
    return d - torch.matmul(n.unsqueeze(-2), cell).squeeze(-2)


def molecule_offsets(
    positions: Tensor, cells: Tensor, mol_batch: Tensor, atoms_per_molecule: int
) -> Tuple[Tensor, Tensor]:
    """Molecule centres made whole across periodic boundaries, and each atom's offset from
    its centre, for one frame or a batch of frames.

    ``c_m = x_{m,0} + mean_k mic(x_{m,k} - x_{m,0})``: the first atom of the molecule plus
    the mean minimum-image displacement of its atoms (unit masses); ``u_{m,k} =
    mic(x_{m,k} - x_{m,0}) - mean_k(...)``: translation-invariant, rotation-equivariant atom
    vectors, independent of the periodic image chosen for each atom. Atoms of one molecule
    are contiguous; the centre is not wrapped into the box.

    Args:
        positions: [N, 3] atoms of all frames, N = M * atoms_per_molecule.
        cells: [B, 3, 3] one cell per frame (rows a, b, c).
        mol_batch: [M] frame of every molecule.
        atoms_per_molecule: A.
    Returns:
        (centers [M, 3], u [N, 3]).
    """
    a = atoms_per_molecule
    if a == 1:
        return positions, torch.zeros_like(positions)
    x = positions.reshape(-1, a, 3)
    cm = cells[mol_batch].unsqueeze(1)  # [M, 1, 3, 3]
    inv = torch.linalg.inv(cells)[mol_batch].unsqueeze(1)
    d = minimum_image(x - x[:, :1, :], cm, inv)
    mean = d.mean(dim=1, keepdim=True)
    return x[:, 0, :] + mean[:, 0, :], (d - mean).reshape(-1, 3)


def molecule_centers(positions: Tensor, cell: Tensor, atoms_per_molecule: int) -> Tensor:
    """Molecule centres [M, 3] of one frame (``cell`` [3, 3]): :func:`molecule_offsets`'s
    centres, on which every molecule neighbour list is built."""
    m = positions.shape[0] // atoms_per_molecule
    batch = torch.zeros(m, dtype=torch.long, device=positions.device)
    return molecule_offsets(positions, cell.unsqueeze(0), batch, atoms_per_molecule)[0]


def intra_molecular_edges(n_molecules: int, atoms_per_molecule: int, device: torch.device) -> Tensor:
    """All ordered atom pairs (k != l) inside each molecule: the intra-molecular graph.

    For the small rigid-ish molecules latentcv targets every pair of a molecule is an
    edge (bonds are a subset). Returns ``edge_index`` [2, M*A*(A-1)] int64 with
    ``edge_index[0]`` the receiving atom i and ``edge_index[1]`` the sending atom j.
    """
    a = atoms_per_molecule
    idx = torch.arange(a, device=device)
    ii = idx.repeat_interleave(a)
    jj = idx.repeat(a)
    keep = ii != jj
    ii = ii[keep]
    jj = jj[keep]
    base = (torch.arange(n_molecules, device=device) * a).unsqueeze(1)
    src = (base + ii.unsqueeze(0)).reshape(-1)
    dst = (base + jj.unsqueeze(0)).reshape(-1)
    return torch.stack([src, dst], dim=0)


def edge_vectors(centers: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
    """``d_ij = c_j + n_ij @ cell - c_i`` for every listed pair, [P, 3] (contract v1)."""
    return centers[edge_index[1]] + edge_shift @ cell - centers[edge_index[0]]


def perpendicular_widths(cell: Tensor) -> Tensor:
    """Distances between opposite faces of the cell, [3] (h_a, h_b, h_c)."""
    vol = torch.abs(torch.det(cell))
    a = cell[0]
    b = cell[1]
    c = cell[2]
    areas = torch.stack(
        [
            torch.linalg.norm(torch.linalg.cross(b, c)),
            torch.linalg.norm(torch.linalg.cross(c, a)),
            torch.linalg.norm(torch.linalg.cross(a, b)),
        ]
    )
    return vol / areas


def neighbor_list(centers: Tensor, cell: Tensor, cutoff: float) -> Tuple[Tensor, Tensor]:
    """O(N) cell-list neighbour search over periodic images (triclinic allowed).

    Bins the wrapped points on a grid of ``n_k = max(1, floor(h_k / cutoff))`` bins along
    each lattice vector (h_k the perpendicular width of the cell) and scans
    ``ceil(cutoff * n_k / h_k)`` bins to each side, so cutoffs larger than half the box,
    or larger than the box, return every periodic image inside the cutoff.

    Args:
        centers: [M, 3] points (any image; need not be inside the cell).
        cell: [3, 3] rows a, b, c.
        cutoff: include pairs with ``|d_ij| < cutoff``.
    Returns:
        ``edge_index`` [2, P] int64 and ``edge_shift`` [P, 3] (integers in the dtype of
        ``centers``), a FULL directed list (both (i, j, n) and (j, i, -n)) such that
        ``d_ij = c_j + n @ cell - c_i``; never i == j with n == 0. No gradient flows
        through the list itself.
    """
    device = centers.device
    c = centers.detach()
    h = cell.detach()
    m = c.shape[0]
    if m == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=device), torch.zeros(0, 3, dtype=c.dtype, device=device)
    s = c @ torch.linalg.inv(h)
    image = torch.floor(s)
    widths = perpendicular_widths(h)
    nbin = torch.clamp(torch.floor(widths / cutoff), min=1.0).to(torch.long)  # [3]
    reach = torch.ceil(cutoff * nbin.to(c.dtype) / widths).to(torch.long)  # [3]
    b3 = torch.floor((s - image) * nbin.to(c.dtype)).to(torch.long)  # bin of each wrapped point
    b3 = torch.minimum(torch.clamp(b3, min=0), nbin - 1)
    i, j, bin_image = _bin_candidates(b3, nbin, reach)
    shift = (bin_image + image.to(torch.long)[i] - image.to(torch.long)[j]).to(c.dtype)
    d = c[j] + shift @ h - c[i]
    r2 = (d * d).sum(dim=1)
    keep = r2 < cutoff * cutoff
    keep = keep & ~((i == j) & (shift.abs().sum(dim=1) == 0))
    edge_index = torch.stack([i[keep], j[keep]], dim=0)
    return edge_index, shift[keep]


def _bin_candidates(b3: Tensor, nbin: Tensor, reach: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Every (point i, point j in a bin within ``reach`` bins of i's) of a cell list.

    Args:
        b3: [M, 3] int64 bin of each point; nbin: [3] bins per lattice vector; reach: [3]
            bins to scan to each side.
    Returns:
        i [C], j [C] and the periodic image [C, 3] of j's bin as seen from i's.
    """
    device = b3.device
    m = b3.shape[0]
    nb: List[int] = nbin.tolist()
    rc: List[int] = reach.tolist()
    n_bins = nb[0] * nb[1] * nb[2]
    flat = (b3[:, 0] * nb[1] + b3[:, 1]) * nb[2] + b3[:, 2]
    order = torch.argsort(flat)
    counts = torch.bincount(flat, minlength=n_bins)
    starts = torch.cumsum(counts, 0) - counts

    # all bin offsets to scan
    ox = torch.arange(-rc[0], rc[0] + 1, device=device)
    oy = torch.arange(-rc[1], rc[1] + 1, device=device)
    oz = torch.arange(-rc[2], rc[2] + 1, device=device)
    offs = torch.stack(torch.meshgrid(ox, oy, oz, indexing="ij"), dim=-1).reshape(-1, 3)  # [O, 3]
    n_off = offs.shape[0]
    target = b3.unsqueeze(1) + offs.unsqueeze(0)  # [M, O, 3]
    nbin_b = nbin.view(1, 1, 3)
    wrapped = torch.remainder(target, nbin_b)
    img = torch.div(target - wrapped, nbin_b, rounding_mode="floor")  # image of the target bin
    tflat = (wrapped[..., 0] * nb[1] + wrapped[..., 1]) * nb[2] + wrapped[..., 2]  # [M, O]
    cnt = counts[tflat].reshape(-1)  # [M*O]
    st = starts[tflat].reshape(-1)
    src_slot = torch.arange(m * n_off, device=device)
    rep = torch.repeat_interleave(src_slot, cnt)
    # position of each candidate within its bin
    first = torch.cumsum(cnt, 0) - cnt
    within = torch.arange(rep.shape[0], device=device) - first[rep]
    j = order[st[rep] + within]
    i = torch.div(rep, n_off, rounding_mode="floor")
    return i, j, img.reshape(-1, 3)[rep]


def frame_graph(positions: Tensor, cell: Tensor, atoms_per_molecule: int, cutoff: float) -> Tuple[Tensor, Tensor]:
    """The molecule pair list of one frame, as the C++ side builds it (no skin):
    ``edge_index`` [2, P] and ``edge_shift`` [P, 3] (dtype of ``positions``) of
    :func:`neighbor_list` on the :func:`molecule_centers`. No gradient."""
    with torch.no_grad():
        c = molecule_centers(positions.detach(), cell.detach(), atoms_per_molecule)
        ei, sh = neighbor_list(c, cell.detach(), cutoff)
    return ei, sh.to(positions.dtype)


def brute_force_neighbor_list(centers: Tensor, cell: Tensor, cutoff: float) -> Tuple[Tensor, Tensor]:
    """O(N^2 * images) reference for :func:`neighbor_list` (tests only)."""
    c = centers.detach()
    h = cell.detach()
    widths = perpendicular_widths(h)
    s = c @ torch.linalg.inv(h)
    span = s.max(0).values - s.min(0).values
    reach = (torch.ceil(cutoff / widths + span) + 1).to(torch.long).tolist()
    rng = [torch.arange(-k, k + 1, dtype=c.dtype) for k in reach]
    shifts = torch.stack(torch.meshgrid(rng[0], rng[1], rng[2], indexing="ij"), -1).reshape(-1, 3)
    m = c.shape[0]
    d = c.view(1, m, 1, 3) + (shifts @ h).view(1, 1, -1, 3) - c.view(m, 1, 1, 3)  # [i, j, n, 3]
    r = d.norm(dim=-1)
    keep = r < cutoff
    zero = (shifts.abs().sum(-1) == 0).view(1, 1, -1)
    eye = torch.eye(m, dtype=torch.bool).view(m, m, 1)
    keep = keep & ~(zero & eye)
    ii, jj, nn = torch.nonzero(keep, as_tuple=True)
    return torch.stack([ii, jj]), shifts[nn]
