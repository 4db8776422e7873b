"""Shared helpers for the tests of the deployment chain (model file → C++ → PLUMED → LAMMPS)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import torch

from latentcv.cv_models.native import paths

TRICLINIC = np.array([[3.2, 0.0, 0.0], [0.7, 3.0, 0.0], [-0.4, 0.5, 3.4]])
ORTHORHOMBIC = np.diag([3.1, 3.3, 3.5])

# 27 free LJ-unit particles on a simple cubic lattice (LAMMPS commands; add a velocity and
# `pair_style zero`): dynamics that is not chaotic, for comparing runs line by line
FREE_PARTICLES = """\
units lj
atom_style atomic
lattice sc 0.4
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 1.0
"""


def random_frame(n_atoms: int, cell: np.ndarray, seed: int = 0, min_dist: float = 0.0) -> np.ndarray:
    """Random positions [n_atoms,3] in the cell (some outside it, to exercise periodicity)."""
    rng = np.random.default_rng(seed)
    frac = rng.uniform(-0.2, 1.2, size=(n_atoms, 3))
    return frac @ cell


def brute_force_pairs(centers: np.ndarray, cell: np.ndarray, cutoff: float, reach: int = 3):
    """Full directed pair list by scanning images n ∈ [-reach, reach]³ (O(M²), tests only)."""
    first, second, shifts = [], [], []
    for n in itertools.product(range(-reach, reach + 1), repeat=3):
        n = np.array(n, dtype=float)
        d = centers[None, :, :] + n @ cell - centers[:, None, :]
        dist = np.linalg.norm(d, axis=-1)
        i, j = np.nonzero(dist < cutoff)
        keep = ~((i == j) & (np.abs(n).sum() == 0))
        first += list(i[keep])
        second += list(j[keep])
        shifts += [n] * int(keep.sum())
    index = np.array([first, second], dtype=np.int64).reshape(2, -1)
    return index, np.array(shifts, dtype=float).reshape(-1, 3)


def eager_evaluate(model_path: Path, positions: np.ndarray, cell: np.ndarray):
    """Reference evaluation in Python: the scripted model with a brute-force pair list."""
    module = torch.jit.load(str(model_path))
    meta = module.metadata()
    dtype = torch.float64 if meta["dtype"] == "float64" else torch.float32
    pos = torch.tensor(positions, dtype=dtype, requires_grad=True)
    box = torch.tensor(cell, dtype=dtype, requires_grad=True)
    centers = module.molecule_centers(pos.detach(), box.detach()).double().numpy()
    index, shift = brute_force_pairs(centers, cell, float(meta["cutoff"]))
    out = module(pos, box, torch.from_numpy(index), torch.tensor(shift, dtype=dtype))
    grads_pos, grads_cell = [], []
    for k in range(out.shape[0]):
        gp, gc = torch.autograd.grad(out[k], (pos, box), retain_graph=True)
        grads_pos.append(gp.double().numpy())
        grads_cell.append(gc.double().numpy())
    return out.detach().double().numpy(), np.array(grads_pos), np.array(grads_cell)


def write_xyz(path: Path, frames: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """xyz trajectory whose comment line holds the 9 box components (PLUMED driver format)."""
    with open(path, "w") as f:
        for positions, cell in frames:
            f.write(f"{len(positions)}\n" + " ".join(f"{x:.12f}" for x in cell.reshape(-1)) + "\n")
            for p in positions:
                f.write(f"X {p[0]:.12f} {p[1]:.12f} {p[2]:.12f}\n")


def run_plumed_driver(
    workdir: Path, plumed_dat: str, frames, extra: list[str] | None = None, *, optimised: bool = False
):
    """Run the bundled (or the optimised, `make plumed-opt`) `plumed driver` on frames;
    returns the CompletedProcess."""
    (workdir / "plumed.dat").write_text(plumed_dat)
    write_xyz(workdir / "traj.xyz", frames)
    cmd = [str(paths.plumed_executable(optimised=optimised))]
    if optimised:
        cmd.append("--no-mpi")  # that one is built with MPI; the driver runs serially
    cmd += ["driver", "--plumed", "plumed.dat", "--ixyz", "traj.xyz"]
    return subprocess.run(
        cmd + (extra or []),
        cwd=workdir,
        env=paths.plumed_environment(optimised=optimised),
        capture_output=True,
        text=True,
        errors="replace",  # a corrupted model's bytes can reach the error message
        timeout=300,
    )
