"""Trajectory data: frames (positions, box, molecules, species, phase label).

- :mod:`.frames`: the shared :class:`Frame` type and the phase labels.
- :mod:`.readers`: LAMMPS dumps / data files and anything mdtraj reads → Frames.
- :mod:`.molecules`: contiguous molecules with one atom pattern, made whole.
- :mod:`.dataset`: :class:`Dataset`, frames grouped by trajectory (save/load ``.npz``).
- :mod:`.split`: train/validation split by contiguous trajectory blocks.
- :mod:`.pbc`: triclinic minimum image and neighbour pairs.
"""

from .dataset import Dataset
from .frames import CRYSTAL, MELT, UNLABELED, Frame
from .molecules import MoleculeLayout, MoleculePatternError, make_whole, molecule_centers
from .readers import read_dataset, read_frames, read_lammps_data, read_lammps_dump, read_mdtraj
from .split import SplitConfig, split_by_blocks
from .writers import write_lammps_data, write_lammps_dump

__all__ = [
    "Frame",
    "CRYSTAL",
    "MELT",
    "UNLABELED",
    "Dataset",
    "MoleculeLayout",
    "MoleculePatternError",
    "make_whole",
    "molecule_centers",
    "read_dataset",
    "read_frames",
    "read_lammps_data",
    "read_lammps_dump",
    "read_mdtraj",
    "SplitConfig",
    "split_by_blocks",
    "write_lammps_data",
    "write_lammps_dump",
]
