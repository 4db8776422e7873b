"""Molecules: which atoms belong together, in a layout every latentcv model can rely on.

A :class:`MoleculeLayout` says how to reorder the atoms of a file so that each molecule's
atoms are contiguous and every molecule has the same atom pattern (same species in the
same order, same bonds), and it makes molecules whole across periodic boundaries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from latentcv.cv_models import graphs as _graphs
from .pbc import minimum_image


class MoleculePatternError(ValueError):
    """The molecules of a system do not all share one atom pattern."""


@dataclass
class MoleculeLayout:
    """Atom order and molecule membership after grouping.

    Attributes:
        order: [N] int64; new atom k is original atom ``order[k]`` (apply as ``x[order]``).
        molecule: [N] int64 molecule index 0..M-1 of each (reordered) atom, contiguous.
        atoms_per_molecule: atoms in each molecule.
        pattern: [atoms_per_molecule] int64 species of the atoms of one molecule
            ([-1] for single-atom molecules of several species: an atomic mixture).
        bonds: [B, 2] int64 bonds of one molecule (local indices), or None if unknown.
    """

    order: np.ndarray
    molecule: np.ndarray
    atoms_per_molecule: int
    pattern: np.ndarray
    bonds: np.ndarray | None = None

    @property
    def n_molecules(self) -> int:
        return len(self.order) // self.atoms_per_molecule


def connected_components(n_atoms: int, bonds: np.ndarray) -> np.ndarray:
    """[N] component label of each atom given [B, 2] bonds (0-based atom indices)."""
    parent = np.arange(n_atoms)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    for a, b in np.asarray(bonds, dtype=np.int64).reshape(-1, 2):
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(a) for a in range(n_atoms)], dtype=np.int64)


def _pattern_error(msg: str) -> MoleculePatternError:
    return MoleculePatternError(
        msg + " latentcv needs every molecule to have the same atoms in the same order "
        "(one species pattern); split the system into one file per molecule type, or give "
        "the molecules explicitly (data file bonds, topology residues, atoms_per_molecule)."
    )


def _molecule_of_atom(groups: np.ndarray) -> np.ndarray:
    """[N] molecule index 0..M-1 per atom, molecules numbered by their first atom in file order."""
    uniq, first = np.unique(groups, return_index=True)
    mol_order = uniq[np.argsort(first)]  # molecules in order of first appearance
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.searchsorted(uniq, mol_order)] = np.arange(len(uniq))
    return rank[np.searchsorted(uniq, groups)]


def _molecule_bonds(bonds: np.ndarray, order: np.ndarray, molecule: np.ndarray, apm: int) -> np.ndarray:
    """[B, 2] bonds of one molecule in local indices, checked to be the same in every molecule.

    Args:
        bonds: [B_total, 2] file atom indices; order: [N] file index of each contiguous
            atom; molecule: [N] molecule of each contiguous atom; apm: atoms per molecule.
    """
    n = len(order)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    b = inverse[bonds]
    mb = molecule[b[:, 0]]
    if (mb != molecule[b[:, 1]]).any():
        raise _pattern_error("A bond joins two different molecules.")
    loc = np.sort(b - (mb * apm)[:, None], axis=1)
    per_mol: list[set] = [set() for _ in range(n // apm)]
    for m, (p, q) in zip(mb.tolist(), loc.tolist()):
        per_mol[m].add((p, q))
    ref = per_mol[0]
    for m, s in enumerate(per_mol):
        if s != ref:
            raise _pattern_error(f"Molecule {m} has bonds {sorted(s)}, molecule 0 has {sorted(ref)} (local indices).")
    return np.array(sorted(ref), dtype=np.int64).reshape(-1, 2)


def build_layout(
    groups: np.ndarray,
    species: np.ndarray,
    bonds: np.ndarray | None = None,
) -> MoleculeLayout:
    """Group atoms into molecules and check that all molecules share one pattern.

    Molecules are ordered by their first atom in file order; within a molecule atoms keep
    file order, unless the species sequences differ between molecules, in which case the
    atoms of each molecule are stably sorted by species (e.g. ``H O H`` and ``O H H``
    both become ``O H H``; species indices sort ``O`` first when it has the lower index).

    Args:
        groups: [N] any integer label per atom; equal labels = same molecule.
        species: [N] int species per atom (file order).
        bonds: optional [B, 2] bonds in file atom indices (0-based).
    Single-atom molecules may differ in species (atomic mixtures).

    Raises:
        MoleculePatternError: molecules differ in size, species or bonds.
    """
    groups = np.asarray(groups)
    species = np.asarray(species, dtype=np.int64)
    n = len(groups)
    mol_of_atom = _molecule_of_atom(groups)
    counts = np.bincount(mol_of_atom)
    if counts.min() != counts.max():
        sizes = {int(c): int((counts == c).sum()) for c in np.unique(counts)}
        raise _pattern_error(f"Molecules have different sizes {sizes} (size: count).")
    apm = int(counts[0])
    order = np.argsort(mol_of_atom, kind="stable")  # contiguous, file order inside
    spec = species[order].reshape(-1, apm)
    if apm == 1:
        # single atoms: species may differ (atomic mixtures); pattern -1 = "any"
        pattern = spec[0].copy() if (spec == spec[0]).all() else np.array([-1], dtype=np.int64)
        return MoleculeLayout(
            order.astype(np.int64), np.arange(n, dtype=np.int64), 1, pattern, np.zeros((0, 2), dtype=np.int64)
        )
    if not (spec == spec[0]).all():
        local = np.argsort(spec, axis=1, kind="stable")
        order = (order.reshape(-1, apm)[np.arange(len(spec))[:, None], local]).reshape(-1)
        spec = species[order].reshape(-1, apm)
        if not (spec == spec[0]).all():
            bad = int(np.nonzero((spec != spec[0]).any(axis=1))[0][0])
            raise _pattern_error(
                f"Molecule {bad} has species {sorted(spec[bad].tolist())}, molecule 0 has {sorted(spec[0].tolist())}."
            )
    molecule = np.repeat(np.arange(len(spec), dtype=np.int64), apm)
    if bonds is not None and len(bonds):
        local_bonds = _molecule_bonds(np.asarray(bonds, dtype=np.int64).reshape(-1, 2), order, molecule, apm)
    else:
        local_bonds = None
    return MoleculeLayout(order.astype(np.int64), molecule, apm, spec[0].copy(), local_bonds)


def layout_from_count(species: np.ndarray, atoms_per_molecule: int) -> MoleculeLayout:
    """Consecutive runs of ``atoms_per_molecule`` atoms (in file order) are molecules."""
    n = len(species)
    if atoms_per_molecule < 1 or n % atoms_per_molecule:
        raise MoleculePatternError(f"{n} atoms cannot be split into molecules of {atoms_per_molecule} atoms.")
    return build_layout(np.arange(n) // atoms_per_molecule, species)


def _unwrap_tree(apm: int, bonds: np.ndarray | None) -> list[tuple[int, int]]:
    """(parent, child) pairs visiting every atom of a molecule once, from atom 0."""
    if bonds is None or len(bonds) == 0 or apm == 1:
        return [(0, k) for k in range(1, apm)]
    adj: list[list[int]] = [[] for _ in range(apm)]
    for p, q in bonds:
        adj[int(p)].append(int(q))
        adj[int(q)].append(int(p))
    seen = {0}
    edges: list[tuple[int, int]] = []
    queue = deque([0])
    while queue:
        a = queue.popleft()
        for b in adj[a]:
            if b not in seen:
                seen.add(b)
                edges.append((a, b))
                queue.append(b)
    # atoms not reached by bonds: attach to atom 0
    edges += [(0, k) for k in range(apm) if k not in seen]
    return edges


def make_whole(
    positions: np.ndarray, cell: np.ndarray, atoms_per_molecule: int, bonds: np.ndarray | None = None
) -> np.ndarray:
    """Unwrap every molecule so its atoms form one connected piece (triclinic cells).

    Walks a spanning tree of the molecule (its bonds, or a star from its first atom) and
    puts each atom at the minimum image of its parent. The first atom keeps its image.

    Args:
        positions: [N, 3] contiguous molecules of ``atoms_per_molecule`` atoms.
        cell: [3, 3] rows are lattice vectors.
    Returns:
        [N, 3] new array.
    """
    pos = np.array(positions, dtype=np.float64, copy=True)
    if atoms_per_molecule == 1:
        return pos
    p = pos.reshape(-1, atoms_per_molecule, 3)
    for parent, child in _unwrap_tree(atoms_per_molecule, bonds):
        p[:, child] = p[:, parent] + minimum_image(p[:, child] - p[:, parent], cell)
    return p.reshape(-1, 3)


def molecule_centers(positions: np.ndarray, cell: np.ndarray, atoms_per_molecule: int) -> np.ndarray:
    """[M, 3] molecule centres of one frame ([N, 3] contiguous molecules, [3, 3] cell):
    :func:`latentcv.cv_models.graphs.molecule_centers` on NumPy arrays, float64, the centres
    every molecule neighbour list and the encoder use."""
    return _graphs.molecule_centers(
        torch.as_tensor(np.asarray(positions, dtype=np.float64)),
        torch.as_tensor(np.asarray(cell, dtype=np.float64)),
        int(atoms_per_molecule),
    ).numpy()


def frame_centers(frame) -> np.ndarray:
    """[M, 3] molecule centres of a :class:`~latentcv.cv_models.data.frames.Frame`
    (:func:`molecule_centers`); the atom positions themselves for one atom per molecule."""
    if frame.atoms_per_molecule == 1:
        return np.asarray(frame.positions, dtype=np.float64)
    return molecule_centers(frame.positions, frame.cell, frame.atoms_per_molecule)
