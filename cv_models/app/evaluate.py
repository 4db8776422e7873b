"""``latentcv eval model.pt TRAJECTORY``: the CV over a trajectory, through the C++ core.

Frames are read with :func:`latentcv.cv_models.data.read_frames` (LAMMPS dumps, or anything mdtraj
reads), converted to the model's length unit, evaluated by ``latentcv.cv_models.native.core``
(the same code PLUMED runs) and written as a COLVAR-style table
(``#! FIELDS frame <outputs>``) and, optionally, a PNG of every output vs frame and a
LAMMPS dump of the molecules with their crystal-likeness and share of ``n_nucleus``
(:func:`write_molecule_dump`, for colouring a nucleus in OVITO).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from latentcv.cv_models.units import length_conversion

from latentcv.export.deploy import model_file, parse_ints

__all__ = [
    "EvalResult",
    "evaluate_trajectory",
    "evaluate_frames",
    "write_colvar",
    "plot_colvar",
    "write_molecule_dump",
    "length_conversion",
]


@dataclass
class EvalResult:
    """CV values along a trajectory.

    Attributes:
        names: the K output names of the model.
        values: [F, K] values (dimensionless / as the model defines them).
        frames: [F] frame index in the trajectory; steps: [F] MD step (-1 if unknown).
        length_unit: model unit; scale: factor applied to the trajectory's lengths.
    """

    names: List[str]
    values: np.ndarray
    frames: np.ndarray
    steps: np.ndarray
    length_unit: str
    scale: float = 1.0
    model: str = ""
    trajectory: str = ""
    metadata: Dict[str, str] = field(default_factory=dict)


def evaluate_frames(
    model: str | os.PathLike,
    frames: Sequence,
    *,
    device: str = "cpu",
    threads: int = 1,
    progress: bool = True,
    trajectory: str = "",
) -> EvalResult:
    """Evaluate the model file on ``Frame`` objects (values only, C++ core)."""
    from tqdm import tqdm

    from latentcv.cv_models.native import core as native

    p = model_file(model)
    core = native.Model(str(p), device=device, threads=threads)
    meta = dict(core.metadata)
    unit = core.length_unit
    apm = int(core.atoms_per_molecule)
    species = parse_ints(meta.get("species", ""))
    frames = list(frames)
    if not frames:
        raise ValueError(f"no frames in {trajectory or 'the input'}")
    values, steps, scale = [], [], 1.0
    for k, f in enumerate(tqdm(frames, desc="latentcv eval", unit="frame", disable=not progress)):
        if f.n_atoms % apm:
            raise ValueError(
                f"frame {k} has {f.n_atoms} atoms, not whole molecules of {apm} atoms (the model's "
                "atoms_per_molecule): evaluate a trajectory of the model's molecules, or fix "
                "--atoms-per-molecule / --data-file"
            )
        if species and f.species is not None and len(f.species) == f.n_atoms:
            expected = np.tile(species, f.n_atoms // apm)
            if np.unique(f.species).size > 1 and not np.array_equal(np.asarray(f.species), expected):
                bad = int(np.nonzero(np.asarray(f.species) != expected)[0][0])
                raise ValueError(
                    f"frame {k}: atom {bad + 1} has species {int(f.species[bad])}, but the model expects "
                    f"molecules of species [{meta.get('species')}] atom by atom; reorder the atoms "
                    "molecule by molecule or give the right --data-file"
                )
        scale = length_conversion(f.length_unit, unit)
        v, _, _ = core.evaluate(
            np.ascontiguousarray(f.positions, dtype=np.float64) * scale,
            np.ascontiguousarray(f.cell, dtype=np.float64) * scale,
            gradients=False,
        )
        values.append(np.asarray(v))
        steps.append(int(getattr(f, "timestep", -1)))
    return EvalResult(
        list(core.output_names),
        np.array(values),
        np.arange(len(frames)),
        np.array(steps),
        unit,
        scale,
        str(p),
        trajectory,
        meta,
    )


def evaluate_trajectory(
    model: str | os.PathLike,
    trajectory: str | os.PathLike,
    *,
    top: Optional[str] = None,
    atoms_per_molecule: Optional[int] = None,
    data_file: Optional[str] = None,
    units: Optional[str] = None,
    length_unit: Optional[str] = None,
    stride: int = 1,
    device: str = "cpu",
    threads: int = 1,
    progress: bool = True,
    molecule_dump: Optional[str | os.PathLike] = None,
) -> EvalResult:
    """Read ``trajectory`` and evaluate ``model`` on every ``stride``-th frame.

    Args:
        top: topology for formats without one (mdtraj).
        atoms_per_molecule: molecule size (default: the model's, when no ``data_file``).
        data_file: LAMMPS data file of the run (molecules from its bonds).
        units: LAMMPS units style of a dump (``lj``, ``real``, ``metal``, ``nano``);
            default ``lj`` for ``lj`` models, otherwise required for dumps.
        length_unit: unit of an mdtraj-read trajectory's numbers (default ``nm``;
            ``lj`` for files holding reduced numbers).
        molecule_dump: also write the per-molecule outputs there (:func:`write_molecule_dump`).
    """
    from latentcv.cv_models.native import core as native
    from latentcv.cv_models.data.readers import is_lammps_dump, read_trajectory

    t = Path(trajectory)
    if not t.exists():
        raise FileNotFoundError(f"trajectory {t} does not exist")
    m = model_file(model)
    info = native.read_model_info(str(m))
    apm = int(info.atoms_per_molecule)
    if is_lammps_dump(t, top):
        if units is None:
            if info.length_unit != "lj":
                raise ValueError(
                    f"a LAMMPS dump does not record its units and the model is in {info.length_unit}: "
                    "pass --units real|metal|nano|lj (the LAMMPS units style of the run)"
                )
            units = "lj"
        if not data_file:
            atoms_per_molecule = atoms_per_molecule or apm
    else:
        atoms_per_molecule = atoms_per_molecule or (apm if apm > 1 else None)
    frames = read_trajectory(
        t,
        top=top,
        atoms_per_molecule=atoms_per_molecule,
        data_file=data_file,
        units=units or "lj",
        length_unit=length_unit or "nm",
        stride=stride,
    )
    result = evaluate_frames(m, frames, device=device, threads=threads, progress=progress, trajectory=str(t))
    if molecule_dump is not None:
        write_molecule_dump(molecule_dump, m, frames)
    return result


def molecule_outputs(model: str | os.PathLike, frames: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame (outputs [M, 2], centres [M, 3]): each molecule's crystal-likeness p (summing
    to ``n_crystal``) and its share of ``n_nucleus``, and the molecule centres in the frame's
    length unit. Evaluated by the model file in Python (the same TorchScript the C++ core
    runs), with its own pair list."""
    import torch

    from latentcv.cv_models.graphs import frame_graph

    from latentcv.export.deploy import load_deployable

    module = load_deployable(model_file(model))
    if not hasattr(module.encoder, "molecule_outputs"):
        raise ValueError(f"{model} has no per-molecule outputs (not a trained latentcv model); drop --molecule-dump")
    meta = dict(module.metadata())
    dtype = torch.float64 if meta.get("dtype", "float64") == "float64" else torch.float32
    apm, cutoff = int(meta["atoms_per_molecule"]), float(meta["cutoff"])
    out = []
    for f in frames:
        scale = length_conversion(f.length_unit, meta["length_unit"])
        x = torch.tensor(np.asarray(f.positions) * scale, dtype=dtype)
        cell = torch.tensor(np.asarray(f.cell) * scale, dtype=dtype)
        edge_index, edge_shift = frame_graph(x, cell, apm, cutoff)
        with torch.no_grad():
            per = module.encoder.molecule_outputs(x, cell, edge_index, edge_shift).double().numpy()
            centres = module.molecule_centers(x, cell).double().numpy() / scale
        out.append((per, centres))
    return out


def write_molecule_dump(path: str | os.PathLike, model: str | os.PathLike, frames: Sequence) -> Path:
    """A LAMMPS text dump with one row per molecule and frame: ``id type x y z c_p
    c_nucleus`` (molecule centre in the trajectory's length unit; ``c_p`` the crystal-likeness,
    summing to ``n_crystal``; ``c_nucleus`` the share of ``n_nucleus``). Open it in OVITO and
    colour by ``c_nucleus`` to see the nucleus (:func:`molecule_outputs`)."""
    frames = list(frames)
    outputs = molecule_outputs(model, frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for k, (f, (per, centres)) in enumerate(zip(frames, outputs)):
            step = int(getattr(f, "timestep", -1))
            _dump_frame(fh, step if step >= 0 else k, centres, np.asarray(f.cell), per)
    return path


def _dump_frame(fh, step: int, centres: np.ndarray, cell: np.ndarray, per: np.ndarray) -> None:
    """One frame of a LAMMPS dump (restricted triclinic box from the cell rows a, b, c)."""
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = (map(float, row) for row in cell)
    bounds = [
        (min(0.0, xy, xz, xy + xz), lx + max(0.0, xy, xz, xy + xz), xy),
        (min(0.0, yz), ly + max(0.0, yz), xz),
        (0.0, lz, yz),
    ]
    fh.write(f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(centres)}\nITEM: BOX BOUNDS xy xz yz pp pp pp\n")
    fh.write("".join(f"{lo:.17g} {hi:.17g} {tilt:.17g}\n" for lo, hi, tilt in bounds))
    fh.write("ITEM: ATOMS id type x y z c_p c_nucleus\n")
    for i, (c, (p, share)) in enumerate(zip(centres, per)):
        fh.write(f"{i + 1} 1 {c[0]:.8g} {c[1]:.8g} {c[2]:.8g} {p:.6g} {share:.6g}\n")


def write_colvar(path: str | os.PathLike, result: EvalResult) -> Path:
    """COLVAR-style table: ``#! FIELDS frame <names>`` (+ ``step`` if known), one row per frame."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with_steps = bool((result.steps >= 0).any())
    fields = ["frame"] + (["step"] if with_steps else []) + list(result.names)
    with open(path, "w") as fh:
        fh.write("#! FIELDS " + " ".join(fields) + "\n")
        fh.write(f"#! SET model {result.model}\n#! SET trajectory {result.trajectory}\n")
        fh.write(f"#! SET length_unit {result.length_unit}\n#! SET length_scale {result.scale!r}\n")
        for k in range(len(result.frames)):
            row = [f"{int(result.frames[k])}"] + ([f"{int(result.steps[k])}"] if with_steps else [])
            row += [f"{x:.14e}" for x in result.values[k]]
            fh.write(" ".join(row) + "\n")
    return path


def plot_colvar(path: str | os.PathLike, result: EvalResult) -> Path:
    """PNG with one panel per output vs frame (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(result.names)
    fig, axes = plt.subplots(k, 1, figsize=(6, 1.5 + 1.3 * k), sharex=True, squeeze=False)
    for i, name in enumerate(result.names):
        ax = axes[i, 0]
        ax.plot(result.frames, result.values[:, i], lw=1.2)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("frame")
    axes[0, 0].set_title(f"latentcv eval: {Path(result.trajectory).name}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
