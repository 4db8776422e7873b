"""`latentcv compare --cvs ice cluster` on mW water: PLUMED's smooth count of ice-like
molecules (Q3 → LOCAL_Q3 → MORE_THAN on its negative → SUM) and its largest ice-like
cluster, as compare writes them, run by the bundled `plumed driver` against an
independent NumPy/SciPy computation of the same definition (value) and against finite
differences (derivatives), on ice Ih and Ic, the melt at 230 K and an ice core in the melt."""

from __future__ import annotations

import numpy as np
import pytest
from chain_helpers import run_plumed_driver

from latentcv.cv_models.data.plumed_table import read_plumed_table

scipy = pytest.importorskip("scipy")
from scipy.sparse.csgraph import connected_components  # noqa: E402
from plumed_reference import cubic, displaced_frames, local_ql  # noqa: E402

CELLS = 4  # 512 mW molecules
N = 512
D0, DMAX = 0.28, 0.35  # nm: the neighbour switch, CUBIC 0.8 × 3.5 Å → 3.5 Å
CORE = 8.0  # Å: radius of the ice core left in the melt (box edge 25.4 Å)


def _ice_likeness(positions: np.ndarray, cell: np.ndarray, ice_q3: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Per molecule 1 − CUBIC(−LOCAL_Q3; ice_q3), and the [N, N] neighbour switch s (nm)."""
    local_q3, s = local_ql(positions, cell, 3, D0, DMAX)
    return 1.0 - cubic(-local_q3, *ice_q3), s


def _reference(positions: np.ndarray, cell: np.ndarray, ice_q3: tuple) -> tuple[float, list[float]]:
    """The ice-like count, and the ice-likeness summed over each largest connected
    component of ice-like neighbours (several where components tie in size)."""
    ice, s = _ice_likeness(positions, cell, ice_q3)
    _, label = connected_components((s * ice[:, None] * ice[None, :]) > 0, directed=False)
    sizes = np.bincount(label)
    return float(ice.sum()), [float(ice[label == k].sum()) for k in np.flatnonzero(sizes == sizes.max())]


def _ice_core_in_melt(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Ice Ic (CELLS³ cells) with every molecule farther than CORE from the box centre
    melted, NVT, the core held still: 3000 steps (30 ps) at 400 K, then 1000 at 230 K; the
    core then shaken by 0.1 Å; positions and cell in Å."""
    from latentcv.cv_models.engines import open_lammps
    from latentcv.cv_models.systems import SYSTEMS, system_commands

    tdamp = SYSTEMS["mw"].tdamp
    lmp = open_lammps()
    try:
        lmp.commands_string(system_commands("mw", CELLS, lattice="ic"))
        xlo, xhi = (np.asarray(v) for v in lmp.extract_box()[:2])
        cx, cy, cz = (xlo + xhi) / 2
        lmp.commands_string(
            f"region core sphere {cx} {cy} {cz} {CORE} units box\ngroup core region core\n"
            f"group shell subtract all core\nvelocity shell create 400 {seed} mom yes dist gaussian\n"
            f"fix md shell nvt temp 400 400 {tdamp}\nrun 3000\nunfix md\n"
            f"fix md shell nvt temp 230 230 {tdamp}\nrun 1000"
        )
        x = np.array(lmp.numpy.extract_atom("x"))[: lmp.get_natoms()]
        core = np.linalg.norm(x - (xlo + xhi) / 2, axis=1) < CORE
    finally:
        lmp.close()
    return x + core[:, None] * np.random.default_rng(seed).normal(0.0, 0.1, x.shape), np.diag(xhi - xlo)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """(positions, cell) in nm: perfect ice Ih and Ic shaken by 0.1 Å (not the perfect
    lattices: there q3 components are exactly 0, where PLUMED 2.11's LOCAL_Q3 forces are
    wrong), the melt after 2300 steps at 230 K (`latentcv generate mw --preset tiny`), and
    an ice core in the melt (:func:`_ice_core_in_melt`)."""
    from latentcv.cv_models.generate import GeneratorConfig, generate
    from latentcv.cv_models.systems import lattice_frame_lammps

    rng = np.random.default_rng(7)
    out = []
    for lattice in ("ih", "ic"):
        f = lattice_frame_lammps("mw", CELLS, lattice=lattice)
        out.append(((f.positions + rng.normal(0.0, 0.1, f.positions.shape)) / 10, f.cell / 10))
    cfg = GeneratorConfig.preset("tiny", "mw", n_cells=CELLS, phases=("melt",), prod_steps=2000, dump_every=1000)
    melt = generate(cfg, tmp_path_factory.mktemp("melt"), progress=False).by_trajectory()["mw-melt-0"][-1]
    out.append((melt.positions / 10, melt.cell / 10))
    x, cell = _ice_core_in_melt()
    out.append((x / 10, cell / 10))
    return out


@pytest.fixture(scope="module")
def ice_config():
    from latentcv.cv_models.app.compare import CompareConfig

    return CompareConfig(system="mw", cells=CELLS, cvs=("q6", "cluster", "ice")).validate()


def test_ice_and_cluster_values_match_numpy_reference(tmp_path, frames, ice_config):
    """compare's calibration input (q6, cluster and ice in one PLUMED input, shared lines
    once): ice reads ~all 512 molecules in Ih and Ic, few in the melt, the core and a few
    in the core-in-melt; the cluster the whole ice, the core; both equal the reference."""
    from latentcv.cv_models.app.compare import calibration_input

    dat = calibration_input(ice_config, N, tmp_path / "COLVAR")
    assert "LOCAL_Q3" in dat and "LOCAL_Q6" not in dat  # mW's cluster: ice-like molecules
    proc = run_plumed_driver(tmp_path, dat, frames, ["--trajectory-stride", "50"])  # the input prints every 50
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = read_plumed_table(tmp_path / "COLVAR")
    cluster, ice = table.column("cluster_sum"), table.column("ice")  # PLUMED prints cluster.sum so
    for k, (x, cell) in enumerate(frames):
        count, largest = _reference(x, cell, ice_config.ice_q3)
        np.testing.assert_allclose(ice[k], count, rtol=1e-7)
        assert np.isclose(largest, cluster[k], rtol=1e-7).any(), (k, cluster[k], largest)
    assert ice[0] > 0.9 * N and ice[1] > 0.9 * N and ice[2] < 0.1 * N  # Ih, Ic; the melt
    assert cluster[0] > 0.9 * N and cluster[1] > 0.9 * N and cluster[2] < 0.05 * N
    lattice, cell = frames[1]
    n_core = int((np.linalg.norm(lattice - cell.sum(axis=0) / 2, axis=1) < CORE / 10).sum())  # ~67
    assert 0.5 * n_core < cluster[3] < 1.5 * n_core and ice[3] > cluster[3], (cluster[3], ice[3], n_core)


@pytest.mark.parametrize("cv", ["ice", "cluster"])
def test_ice_derivatives_match_finite_differences(tmp_path, frames, ice_config, cv):
    """PLUMED's analytic forces from a linear bias on the CV (the driver's --dump-forces:
    −∂CV/∂x, nm) against central differences of the driver's own values, for molecules at
    the ice core's surface, part ice-like (where ice-likeness has a slope)."""
    from latentcv.cv_models.app.compare import cv_lines

    x, cell = frames[3]
    ice, _ = _ice_likeness(x, cell, ice_config.ice_q3)
    near = np.linalg.norm(x - cell.sum(axis=0) / 2, axis=1) < CORE / 10 + 0.3
    probes = [(k, axis) for k in np.flatnonzero(near & (ice > 0.05) & (ice < 0.95))[:6] for axis in (0, 2)]
    h = 1e-5
    moved = displaced_frames(x, probes, h)
    lines, arg = cv_lines(ice_config, cv, N)
    bias = f"linear: RESTRAINT ARG={arg} AT=0 KAPPA=0 SLOPE=1"  # V = CV: force = −∂CV/∂x
    dat = "\n".join(lines + [bias, f"PRINT ARG={arg} FILE=COLVAR FMT=%.14e"]) + "\n"
    extra = ["--dump-forces", "forces.xyz", "--dump-forces-fmt", "%.14e"]
    proc = run_plumed_driver(tmp_path, dat, [(y, cell) for y in moved], extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = read_plumed_table(tmp_path / "COLVAR").data[:, 1]
    rows = (tmp_path / "forces.xyz").read_text().splitlines()[2 : 2 + N]  # frame 0, after count and box
    force = np.array([[float(v) for v in row.split()[1:4]] for row in rows])
    analytic = np.array([-force[k, axis] for k, axis in probes])
    numeric = (values[1::2] - values[2::2]) / (2 * h)
    assert np.abs(analytic).max() > 1.0  # the core's molecules do move the CV (per nm)
    np.testing.assert_allclose(analytic, numeric, atol=1e-5 * np.abs(analytic).max() + 1e-6)
