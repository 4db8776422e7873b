"""`latentcv compare --cvs cluster`: PLUMED's analytic largest-cluster CV, as compare writes
it, run by the bundled `plumed driver` against an independent NumPy/SciPy computation of
the same definition (value) and against finite differences (derivatives)."""

from __future__ import annotations

import numpy as np
import pytest
from chain_helpers import run_plumed_driver

from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.synthetic import fcc_positions

scipy = pytest.importorskip("scipy")
from scipy.sparse.csgraph import connected_components  # noqa: E402
from plumed_reference import cubic, displaced_frames, local_ql  # noqa: E402

CELLS = 3  # 108 LJ atoms
LATTICE = 1.6  # σ: nearest neighbours at 1.13 σ, inside the switch's D_0 = 1.2 σ


def _reference_cluster(
    positions: np.ndarray, cell, d0: float, dmax: float, solid: tuple, link: tuple | None = None
) -> float:
    """Σ of solid-likeness over the largest connected component of solid-like neighbours:
    q6 vectors over CUBIC-switched neighbours, LOCAL_Q6 = Σ_j s_ij Re(q̂6(i)·q̂6(j)*),
    solid-like = 1 − CUBIC(LOCAL_Q6; solid); neighbours in contact within the CUBIC
    switch ``link`` (d0, dmax), else the q6 switch. ``cell``: a cubic box's edge or [3, 3]."""
    cell = np.asarray(cell) * (np.eye(3) if np.ndim(cell) == 0 else 1.0)
    local_q6, s = local_ql(positions, cell, 6, d0, dmax)
    if link is not None:
        _, s = local_ql(positions, cell, 6, *link)
    solid_like = 1.0 - cubic(local_q6, *solid)
    adjacency = (s * solid_like[:, None] * solid_like[None, :]) > 0
    _, label = connected_components(adjacency, directed=False)
    largest = np.bincount(label).argmax()
    return float(solid_like[label == largest].sum())


def _fcc(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    positions, _ = fcc_positions(CELLS, LATTICE)
    return positions + rng.normal(0.0, 0.04, positions.shape), CELLS * LATTICE


def _nucleus_in_gas(rng: np.random.Generator, positions: np.ndarray, box: float) -> np.ndarray:
    """The crystal within 1.9 σ of the box centre kept; every other atom moved at random."""
    out = positions.copy()
    far = np.linalg.norm(positions - box / 2, axis=1) > 1.9
    out[far] = rng.uniform(0.0, box, (far.sum(), 3))
    return out


@pytest.fixture(scope="module")
def cluster_config():
    from latentcv.cv_models.app.compare import CompareConfig

    return CompareConfig(cells=CELLS, cvs=("cluster",)).validate()


def test_cluster_value_matches_numpy_reference(tmp_path, cluster_config):
    """A crystal reads ~all 108 atoms; a crystal core in a gas reads the core; both equal
    the independent computation of the same definition."""
    from latentcv.cv_models.app.compare import cv_lines

    rng = np.random.default_rng(3)
    crystal, box = _fcc(rng)
    nucleus = _nucleus_in_gas(rng, crystal, box)
    lines, arg = cv_lines(cluster_config, "cluster", 108)
    dat = "\n".join(lines + [f"PRINT ARG={arg} FILE=COLVAR FMT=%.12f"]) + "\n"
    cell = np.eye(3) * box
    proc = run_plumed_driver(tmp_path, dat, [(crystal, cell), (nucleus, cell)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = read_plumed_table(tmp_path / "COLVAR").data[:, 1]
    d0, dmax = 1.2, 1.5
    expected = [_reference_cluster(x, box, d0, dmax, cluster_config.cluster_solid_q6) for x in (crystal, nucleus)]
    np.testing.assert_allclose(values, expected, rtol=1e-7)
    assert values[0] > 100 and 3 < values[1] < 40  # the whole crystal; only the core


def test_cluster_derivatives_match_finite_differences(tmp_path, cluster_config):
    """PLUMED's analytic forces from a linear bias on the value (the driver's
    --dump-forces: −∂CV/∂x) against central differences of the driver's own values, for
    atoms of the nucleus."""
    from latentcv.cv_models.app.compare import cv_lines

    rng = np.random.default_rng(5)
    crystal, box = _fcc(rng)
    nucleus = _nucleus_in_gas(rng, crystal, box)
    probes = [
        (k, axis) for k in np.flatnonzero(np.linalg.norm(crystal - box / 2, axis=1) <= 1.9)[:6] for axis in (0, 2)
    ]
    h = 1e-5
    frames = displaced_frames(nucleus, probes, h)
    lines, arg = cv_lines(cluster_config, "cluster", 108)
    bias = f"linear: RESTRAINT ARG={arg} AT=0 KAPPA=0 SLOPE=1"  # V = CV: force = −∂CV/∂x
    dat = "\n".join(lines + [bias, f"PRINT ARG={arg} FILE=COLVAR FMT=%.14e"]) + "\n"
    cell = np.eye(3) * box
    extra = ["--dump-forces", "forces.xyz", "--dump-forces-fmt", "%.14e"]
    proc = run_plumed_driver(tmp_path, dat, [(x, cell) for x in frames], extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = read_plumed_table(tmp_path / "COLVAR").data[:, 1]
    rows = (tmp_path / "forces.xyz").read_text().splitlines()[2 : 2 + 108]  # frame 0, after count and box
    force = np.array([[float(v) for v in row.split()[1:4]] for row in rows])
    analytic = np.array([-force[k, axis] for k, axis in probes])
    numeric = (values[1::2] - values[2::2]) / (2 * h)
    assert np.abs(analytic).max() > 0.1  # the nucleus' atoms do move the CV
    np.testing.assert_allclose(analytic, numeric, atol=1e-5 * np.abs(analytic).max() + 1e-6)


def test_trimer_cluster_spans_the_rod_layers(tmp_path):
    """The trimers' crystal (rods in close-packed layers 1.9-2.0 σ apart): on the molecule
    centres, with the system's solid-likeness (2.5, 3.5) and contacts out to its
    cluster_link 2.1 σ, the CV reads the whole crystal, not one layer (the Q6 cutoff of
    1.5 σ alone joins only the 6 in-layer neighbours), equal to the independent
    computation of the same definition."""
    from latentcv.cv_models.app.compare import CompareConfig, cv_lines
    from latentcv.cv_models.systems import lattice_frame_lammps

    cfg = CompareConfig(system="trimers", cells=2, cvs=("cluster",)).validate()
    assert cfg.cluster_solid_q6 == (2.5, 3.5) and cfg.target.cluster_link == 2.1
    frame = lattice_frame_lammps("trimers", 2)
    rng = np.random.default_rng(7)
    atoms = frame.positions + rng.normal(0.0, 0.02, frame.positions.shape)
    n_mol = len(atoms) // 3
    lines, arg = cv_lines(cfg, "cluster", len(atoms))
    dat = "\n".join(lines + [f"PRINT ARG={arg} FILE=COLVAR FMT=%.12f"]) + "\n"
    proc = run_plumed_driver(tmp_path, dat, [(atoms, frame.cell)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    value = read_plumed_table(tmp_path / "COLVAR").data[0, 1]
    rods = atoms.reshape(n_mol, 3, 3)
    frac = (rods - rods[:, :1]) @ np.linalg.inv(frame.cell)  # molecules made whole, then centred
    centres = rods[:, 0] + ((frac - np.round(frac)) @ frame.cell).mean(axis=1)
    expected = _reference_cluster(centres, frame.cell, 1.2, 1.5, cfg.cluster_solid_q6, link=(1.8, 2.1))
    one_layer = _reference_cluster(centres, frame.cell, 1.2, 1.5, cfg.cluster_solid_q6)
    np.testing.assert_allclose(value, expected, rtol=1e-7)
    assert value > 0.95 * n_mol and one_layer < 0.5 * n_mol
