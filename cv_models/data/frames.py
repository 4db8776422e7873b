"""The one in-memory frame type every part of latentcv exchanges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .molecules import MoleculeLayout, make_whole

MELT = 0
CRYSTAL = 1
UNLABELED = -1

#: Phase label names accepted in configs and by the readers (any case), and their values.
PHASE_LABELS = {"crystal": CRYSTAL, "melt": MELT, "unlabeled": UNLABELED}


def parse_label(value: Any) -> int:
    """A phase label as CRYSTAL / MELT / UNLABELED.

    Accepts the names "crystal", "melt", "unlabeled" (any case) and the integers 1, 0, -1
    (also written as strings); anything else raises ValueError naming the allowed values.
    """
    number: int | None = None
    if isinstance(value, str):
        key = value.strip().lower()
        if key in PHASE_LABELS:
            return PHASE_LABELS[key]
        try:
            number = int(key)
        except ValueError:
            pass
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        number = int(value)
    if number in PHASE_LABELS.values():
        return int(number)
    raise ValueError(f'phase label {value!r} is not one of "crystal", "melt", "unlabeled" (any case) or 1, 0, -1')


@dataclass
class Frame:
    """One configuration of a periodic system.

    Attributes:
        positions: [N, 3] float64 atom positions, in ``length_unit``; any periodic image.
        cell: [3, 3] float64, rows are the lattice vectors a, b, c (triclinic allowed).
        molecule: [N] int64 molecule index 0..M-1; atoms of one molecule are contiguous
            and every molecule has the same atom pattern (single-atom molecules may
            differ in species: atomic mixtures).
        species: [N] int64 species index per atom.
        label: phase label of the whole frame: CRYSTAL, MELT or UNLABELED.
        length_unit: "lj" (reduced, sigma), "A" or "nm".
        trajectory: name of the trajectory (or block) the frame comes from.
        index: frame index within that trajectory.
        bonds: optional [B, 2] int64 bonds of ONE molecule, as atom indices local to the
            molecule (0..atoms_per_molecule-1); the same pattern holds for every
            molecule. None when unknown (e.g. fixed atoms-per-molecule count).
        timestep: MD step the frame was taken at (-1 when unknown).
        molecule_labels: optional [M] int64 phase label of each molecule (CRYSTAL, MELT
            or UNLABELED), e.g. from a local order criterion on interface frames; None =
            the frame's ``label`` holds for all its molecules.
    """

    positions: np.ndarray
    cell: np.ndarray
    molecule: np.ndarray
    species: np.ndarray
    label: int = UNLABELED
    length_unit: str = "lj"
    trajectory: str = ""
    index: int = 0
    bonds: np.ndarray | None = None
    timestep: int = -1
    molecule_labels: np.ndarray | None = None

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_molecules(self) -> int:
        return int(self.molecule.max()) + 1 if self.molecule.size else 0

    @property
    def atoms_per_molecule(self) -> int:
        return self.n_atoms // max(self.n_molecules, 1)


def frame_place(source: str, frame: int, timestep: int = -1) -> str:
    """How errors name a frame: ``"crystal.dump, frame 3 (timestep 300)"`` (frames count from 0)."""
    where = f"{source}, frame {frame}" if source else f"frame {frame}"
    return f"{where} (timestep {timestep})" if timestep >= 0 else where


def check_frame_arrays(
    positions: np.ndarray, cell: np.ndarray, where: str, n_atoms: int, atom_ids: np.ndarray | None = None
) -> None:
    """ValueError naming ``where`` (see :func:`frame_place`) and the atom, unless
    ``positions`` is [n_atoms, 3] and finite and ``cell`` is a finite [3, 3] cell of positive
    volume: the one check of every frame that enters latentcv (readers, datasets, ``train``).

    ``atom_ids``: the file's id of each row (LAMMPS ``id``), else atoms are named by their
    row index from 0."""
    r = np.asarray(positions)
    h = np.asarray(cell)
    if n_atoms < 1:
        raise ValueError(f"{where}: the frame holds no atoms")
    if r.shape != (n_atoms, 3):
        raise ValueError(
            f"{where}: {r.shape[0] if r.ndim else 0} atoms, but the first frame of this trajectory "
            f"holds {n_atoms}: every frame of one trajectory must hold the same atoms (split the file "
            "where the atom count changes, one trajectory per part)"
        )
    if h.shape != (3, 3) or not np.isfinite(h).all():
        raise ValueError(f"{where}: the cell {h.tolist()} is not a finite 3 x 3 box")
    volume = float(np.linalg.det(h))
    if not volume > 0 or not np.isfinite(volume):
        raise ValueError(
            f"{where}: the cell (rows a, b, c) {h.tolist()} has volume {volume:.6g}; a periodic box "
            "needs a positive volume (check the BOX BOUNDS: hi > lo)"
        )
    bad = ~np.isfinite(r).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        atom = f"atom id {int(atom_ids[i])}" if atom_ids is not None else f"atom {i} (row from 0)"
        raise ValueError(
            f"{where}: {atom} has a non-finite position {r[i].tolist()} ({int(bad.sum())} such atom(s) "
            "in this frame); remove the frame or fix the file (a blown-up MD step?)"
        )


def check_frames(frames: "list[Frame]", source: str = "") -> None:
    """:func:`check_frame_arrays` for Frames made elsewhere (a saved dataset, a synthetic
    set, frames handed to ``train``); also that species and molecules match the atoms."""
    for f in frames:
        name = f"{source}: trajectory {f.trajectory!r}" if source else f"trajectory {f.trajectory!r}"
        where = frame_place(name, f.index, f.timestep)
        n = int(np.asarray(f.species).shape[0])
        check_frame_arrays(f.positions, f.cell, where, n)
        if np.asarray(f.molecule).shape != (n,):
            raise ValueError(f"{where}: {np.asarray(f.molecule).shape} molecule indices for {n} atoms")


def frames_from_arrays(
    positions: list[np.ndarray],
    cells: list[np.ndarray],
    timesteps: list[int],
    species: np.ndarray,
    layout: MoleculeLayout,
    *,
    label: int | str,
    length_unit: str,
    trajectory: str,
    scale: float = 1.0,
    source: str = "",
    file_frames: list[int] | None = None,
    atom_ids: np.ndarray | None = None,
) -> list[Frame]:
    """Frames from a reader's raw arrays, molecules made whole and contiguous; every
    frame checked by :func:`check_frame_arrays` first.

    Args:
        positions, cells: per frame, [N, 3] positions in file atom order and the [3, 3]
            cell, both multiplied by ``scale`` into ``length_unit``.
        timesteps: MD step per frame (-1 when unknown).
        species: [N] species in file atom order; ``layout``: the molecules (its ``order``
            makes them contiguous).
        label, length_unit, trajectory: copied into every Frame; ``index`` counts from 0.
        source, file_frames, atom_ids: what errors name: the file, each frame's place in
            it (default: its place in ``positions``) and the file's atom ids.
    """
    out = []
    label = parse_label(label)
    spec = species[layout.order]
    for k, (r, h, t) in enumerate(zip(positions, cells, timesteps)):
        where = frame_place(source or trajectory, k if file_frames is None else file_frames[k], int(t))
        check_frame_arrays(r, h, where, len(species), atom_ids)
        h = np.asarray(h, dtype=np.float64) * scale
        r = np.asarray(r, dtype=np.float64)[layout.order] * scale
        r = make_whole(r, h, layout.atoms_per_molecule, layout.bonds)
        if not (np.isfinite(r).all() and np.isfinite(h).all()):
            raise ValueError(
                f"{where}: positions or cell overflow once converted to {length_unit} "
                f"(x {scale:g}); the numbers in the file are too large to be lengths"
            )
        out.append(
            Frame(
                positions=r,
                cell=h,
                molecule=layout.molecule.copy(),
                species=spec.copy(),
                label=label,
                length_unit=length_unit,
                trajectory=trajectory,
                index=k,
                bonds=None if layout.bonds is None else layout.bonds.copy(),
                timestep=int(t),
            )
        )
    return out
