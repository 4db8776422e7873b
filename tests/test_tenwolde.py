"""Steinhardt q6 and the ten Wolde solid-bond criterion (latentcv.cv_models.analysis.tenwolde)."""

from __future__ import annotations

import numpy as np
import pytest

from latentcv.cv_models.analysis import TenWoldeConfig, spherical_harmonics, ten_wolde, ten_wolde_frame
from latentcv.cv_models.data import Frame
from latentcv.cv_models.synthetic import FCC_BASIS, lattice_positions

FCC = FCC_BASIS
BCC = [[0, 0, 0], [0.5, 0.5, 0.5]]
SC = [[0, 0, 0]]


def hcp(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ideal hcp (c/a = sqrt(8/3)), nearest-neighbour distance 1, orthorhombic cell."""
    a, c = 1.0, np.sqrt(8.0 / 3.0)
    cell_basis = np.array(
        [[0, 0, 0], [0.5, np.sqrt(3) / 2, 0], [0.5, np.sqrt(3) / 6, c / 2], [0, 2 * np.sqrt(3) / 3, c / 2]]
    )
    g = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], float)
    shift = g * np.array([a, np.sqrt(3) * a, c])
    pts = (shift[:, None, :] + cell_basis[None]).reshape(-1, 3)
    return pts, np.diag([n * a, n * np.sqrt(3) * a, n * c])


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_spherical_harmonics_match_scipy():
    special = pytest.importorskip("scipy.special")
    if not hasattr(special, "sph_harm_y"):
        pytest.skip("scipy too old for sph_harm_y")
    v = np.random.default_rng(0).normal(size=(40, 3))
    v[0] = [0, 0, 2.0]  # on the z axis
    r = np.linalg.norm(v, axis=1)
    theta, phi = np.arccos(v[:, 2] / r), np.arctan2(v[:, 1], v[:, 0])
    for l in (0, 1, 2, 4, 6):
        ref = np.stack([special.sph_harm_y(l, m, theta, phi) for m in range(-l, l + 1)], axis=1)
        assert np.allclose(spherical_harmonics(l, v), ref, atol=1e-13)


def test_spherical_harmonics_normalised():
    """Addition theorem: Σ_m |Y_lm|² = (2l+1)/4π for every direction."""
    v = np.random.default_rng(1).normal(size=(20, 3))
    y = spherical_harmonics(6, v)
    assert np.allclose((np.abs(y) ** 2).sum(axis=1), 13 / (4 * np.pi))


@pytest.mark.parametrize(
    "name, points_cell, cutoff, q6, solid",
    [
        ("fcc", lattice_positions(FCC, 4), 0.8, 0.57452, True),
        ("bcc 8+6", lattice_positions(BCC, 4), 1.1, 0.51069, True),
        ("sc", lattice_positions(SC, 5), 1.1, 0.35355, False),  # 6 neighbours < 8 solid bonds
        ("hcp", hcp(4), 1.2, 0.48476, True),
    ],
)
def test_perfect_lattices(name, points_cell, cutoff, q6, solid):
    pts, cell = points_cell
    r = ten_wolde(pts, cell, TenWoldeConfig(cutoff=cutoff))
    assert np.allclose(r.q, q6, atol=5e-5), name
    assert r.solid.all() == solid and (not solid or r.largest_cluster == len(pts))
    assert r.mean_q == pytest.approx(q6, abs=5e-5)


def test_fcc_in_a_primitive_triclinic_cell():
    """fcc described by its rhombohedral primitive cell, replicated: same q6, all solid."""
    prim = np.array([[0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    n = 4
    g = np.array([[i, j, k] for i in range(n) for j in range(n) for k in range(n)], float)
    pts = g @ prim
    r = ten_wolde(pts, prim * n, TenWoldeConfig(cutoff=0.8))
    assert np.allclose(r.q, 0.57452, atol=5e-5) and r.solid.all()
    assert (r.n_neighbours == 12).all()


def test_random_gas_is_not_solid():
    rng = np.random.default_rng(2)
    L = 8.0
    pts = rng.uniform(0, L, size=(512, 3))  # number density 1
    r = ten_wolde(pts, np.eye(3) * L, TenWoldeConfig(cutoff=1.5))
    assert r.solid_fraction < 0.02
    assert r.global_q < 0.1


def test_one_lattice_builder():
    """lattice_positions (cv_models/synthetic.py) builds every lattice: cells in i, j, k
    order, the orthorhombic box, fcc's 12 nearest neighbours at a/sqrt(2); lattice_frame
    and fcc_positions go through it, and no other module spells the fcc basis again."""
    from pathlib import Path

    from latentcv.cv_models.analysis.cv_quality import lattice_frame
    from latentcv.cv_models.data.pbc import minimum_image
    from latentcv.cv_models.synthetic import fcc_positions

    pts, box = lattice_positions(FCC, (2, 3, 4), 1.5)
    assert pts.shape == (96, 3) and np.allclose(box, np.diag([3.0, 4.5, 6.0]))
    assert np.allclose(pts[:4], np.array(FCC) * 1.5) and np.allclose(pts[4], [0, 0, 1.5])
    pts, box = fcc_positions(3, 1.5)
    r = np.linalg.norm(minimum_image(pts[1:] - pts[0], box), axis=1)
    assert np.sum(np.isclose(r, 1.5 / np.sqrt(2))) == 12 and r.min() > 1.5 / np.sqrt(2) - 1e-12
    frame = lattice_frame("fcc", 3, density=1.04)
    assert np.isclose(frame.n_atoms / np.linalg.det(frame.cell), 1.04)
    root = Path(__file__).resolve().parent.parent
    basis = "[0, 0, 0], [0.5, 0.5, 0], " + "[0.5, 0, 0.5]"
    spelled = [
        str(p.relative_to(root))
        for d in ("cv_models", "export", "tests", "benchmarks")
        for p in (root / d).rglob("*.py")
        if basis in p.read_text()
    ]
    assert spelled == ["cv_models/synthetic.py"], spelled


def test_thermal_fcc_is_solid():
    rng = np.random.default_rng(3)
    pts, cell = lattice_positions(FCC, 4, 1.59)
    r = ten_wolde(pts + rng.normal(scale=0.08, size=pts.shape), cell, TenWoldeConfig(cutoff=1.5))
    assert r.solid_fraction > 0.98


def test_rotation_translation_invariance():
    rng = np.random.default_rng(4)
    pts, cell = lattice_positions(FCC, 3, 1.59)
    pts = pts + rng.normal(scale=0.15, size=pts.shape)
    cell = cell + np.array([[0, 0, 0], [0.4, 0, 0], [-0.3, 0.5, 0]])  # triclinic
    ref = ten_wolde(pts, cell, TenWoldeConfig(cutoff=1.5))
    rot = random_rotation(rng)
    rcell = cell @ rot.T
    moved = pts @ rot.T + rng.normal(size=3) * 10
    moved[::3] += rcell[1] - 2 * rcell[2]  # other periodic images
    out = ten_wolde(moved, rcell, TenWoldeConfig(cutoff=1.5))
    assert np.allclose(out.q, ref.q, atol=1e-10)
    assert np.array_equal(out.n_solid_bonds, ref.n_solid_bonds)
    assert out.global_q == pytest.approx(ref.global_q, abs=1e-10)


def test_thresholds_are_parameters():
    pts, cell = lattice_positions(FCC, 3)
    cfg = TenWoldeConfig(cutoff=0.8, min_solid_bonds=13)  # fcc has 12 neighbours
    assert not ten_wolde(pts, cell, cfg).solid.any()
    cfg = TenWoldeConfig(cutoff=0.8, bond_threshold=1.01)
    assert not ten_wolde(pts, cell, cfg).solid.any()


def test_dimers_use_molecule_centers():
    """Randomly oriented dimers on fcc sites: centres are fcc, atoms are not."""
    rng = np.random.default_rng(5)
    centres, cell = lattice_positions(FCC, 3, 1.7)
    u = rng.normal(size=centres.shape)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pos = np.stack([centres - 0.15 * u, centres + 0.15 * u], axis=1).reshape(-1, 3)
    s = pos @ np.linalg.inv(cell)
    pos = (s - np.floor(s)) @ cell  # wrapped: some dimers split across faces
    m = len(centres)
    f = Frame(pos, cell, np.repeat(np.arange(m), 2), np.zeros(2 * m, np.int64), bonds=np.array([[0, 1]]))
    r = ten_wolde_frame(f, TenWoldeConfig(cutoff=1.5))
    assert len(r.q) == m and r.solid.all() and np.allclose(r.q, 0.57452, atol=1e-4)
    atoms = ten_wolde_frame(f, TenWoldeConfig(cutoff=1.5, on="atoms"))
    assert len(atoms.q) == 2 * m and atoms.mean_q < r.mean_q


# ----------------------------------------------------------------------------- g(r) cutoff suggestion
def thermal_fcc_frames(n_frames: int, nn: float, apm: int = 1, bond: float = 1.0, noise: float = 0.03, seed: int = 0):
    """Frames of an fcc lattice of molecule centres (nearest neighbours ``nn`` apart) with
    thermal noise; for ``apm == 2`` aligned dimers of length ``bond`` on the sites."""
    rng = np.random.default_rng(seed)
    pts, cell = lattice_positions(FCC, 3, nn * np.sqrt(2.0))
    axis = np.array([1.0, 1.0, 1.0]) / np.sqrt(3.0)
    frames = []
    for k in range(n_frames):
        c = pts + rng.normal(scale=noise, size=pts.shape)
        pos = c if apm == 1 else np.stack([c - 0.5 * bond * axis, c + 0.5 * bond * axis], axis=1).reshape(-1, 3)
        frames.append(
            Frame(
                positions=pos,
                cell=cell.copy(),
                molecule=np.repeat(np.arange(len(pts)), apm),
                species=np.zeros(len(pos), dtype=np.int64),
                index=k,
                timestep=k,
                bonds=np.array([[0, 1]]) if apm == 2 else None,
            )
        )
    return frames


def _suggested(out: str) -> tuple[float, float]:
    import re

    cutoff = float(re.search(r"^cutoff = ([0-9.]+)", out, re.M).group(1))
    r_on = float(re.search(r"^r_on = ([0-9.]+)", out, re.M).group(1))
    return cutoff, r_on


def test_suggest_cutoff_on_lj_fcc(tmp_path, capsys):
    """LJ fcc at density ~1.07: shells at 1.09 and 1.54 sigma; the cutoff goes between them."""
    from latentcv.cv_models.analysis import suggest_cutoff
    from latentcv.cv_models.app.cli import main
    from latentcv.cv_models.data import write_lammps_dump

    frames = thermal_fcc_frames(4, nn=1.09)
    s = suggest_cutoff(frames)
    assert abs(s.first_peak - 1.09) < 0.04
    assert 1.2 < s.cutoff < 1.45 and s.r_on == pytest.approx(0.8 * s.cutoff)
    write_lammps_dump(tmp_path / "fcc.dump", frames)
    assert main(["suggest-cutoff", str(tmp_path / "fcc.dump"), "--plot", str(tmp_path / "gr.png")]) == 0
    out = capsys.readouterr().out
    cutoff, r_on = _suggested(out)
    assert cutoff == pytest.approx(s.cutoff, abs=1e-3) and r_on == pytest.approx(0.8 * cutoff, abs=1e-3)
    assert "108 molecule centres over 4 frame(s)" in out and f"TenWoldeConfig(cutoff={cutoff:.4g})" in out
    assert (tmp_path / "gr.png").stat().st_size > 0
    # a gas has no neighbour shell: an error that says what to give instead
    rng = np.random.default_rng(1)
    gas = Frame(
        positions=rng.uniform(0, 5, (108, 3)),
        cell=np.eye(3) * 5,
        molecule=np.arange(108),
        species=np.zeros(108, dtype=np.int64),
    )
    write_lammps_dump(tmp_path / "gas.dump", [gas])
    assert main(["suggest-cutoff", str(tmp_path / "gas.dump")]) == 2
    assert "no neighbour shell" in capsys.readouterr().err


def test_suggest_cutoff_and_ten_wolde_auto_on_a_molecular_crystal(tmp_path, capsys):
    """Dimer centres 1.7 apart (second shell 2.4): a fixed 1.5 cutoff reads 0 % solid,
    the g(r) first minimum (CLI with --data-file, and TenWoldeConfig(cutoff="auto")) 100 %."""
    from latentcv.cv_models.app.cli import main
    from latentcv.cv_models.data import write_lammps_data, write_lammps_dump

    frames = thermal_fcc_frames(3, nn=1.7, apm=2)
    write_lammps_dump(tmp_path / "dimers.dump", frames)
    write_lammps_data(tmp_path / "dimers.data", frames[0])
    assert main(["suggest-cutoff", str(tmp_path / "dimers.dump"), "--data-file", str(tmp_path / "dimers.data")]) == 0
    out = capsys.readouterr().out
    cutoff, _ = _suggested(out)
    assert 1.85 < cutoff < 2.3 and "108 molecule centres" in out
    fixed = ten_wolde_frame(frames[0], TenWoldeConfig(cutoff=1.5))
    assert fixed.solid_fraction == 0.0
    auto = ten_wolde_frame(frames[0], TenWoldeConfig(cutoff="auto"))
    assert auto.solid_fraction == 1.0 and 1.85 < auto.cutoff < 2.3
    assert (auto.n_neighbours == 12).all()
    with pytest.raises(ValueError, match='distance or "auto"'):
        ten_wolde_frame(frames[0], TenWoldeConfig(cutoff="first-minimum"))
