"""mW water (examples/mw, units real): the potential file against the published parameters,
the ice lattices, the CHILL+ judge of ice, the phases at the state point, and the melting
point from ice-water coexistence (Molinero & Moore, J. Phys. Chem. B 113, 4008 (2009))."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from latentcv.cv_models.analysis.ice import ICE_LABELS, chill_plus, chill_plus_frame
from latentcv.cv_models.data.pbc import minimum_image
from latentcv.cv_models.systems import SYSTEMS, lattice_frame_lammps, system_commands

MW = SYSTEMS["mw"]
T_M = 274.6  # K, Molinero & Moore 2009
# the published mW parameters (Molinero & Moore 2009, Table 1), typed here independently of mW.sw
PUBLISHED = dict(
    epsilon=6.189,  # kcal/mol
    sigma=2.3925,  # A
    a=1.8,
    lam=23.15,
    gamma=1.2,
    cos0=-1.0 / 3.0,
    A=7.049556277,
    B=0.6022245584,
    p=4.0,
    q=0.0,
)
AVOGADRO = 6.02214076e23


def sw_energy(x: np.ndarray, P: dict = PUBLISHED) -> float:
    """Stillinger-Weber energy (kcal/mol) of points ``x`` [N, 3] (Å, no periodicity), the
    formula of Stillinger & Weber, Phys. Rev. B 31, 5262 (1985) as LAMMPS writes it."""
    eps, sig, a = P["epsilon"], P["sigma"], P["a"]
    rc = a * sig
    e = 0.0
    for i, j in itertools.combinations(range(len(x)), 2):
        r = np.linalg.norm(x[j] - x[i])
        if r < rc:
            e += P["A"] * eps * (P["B"] * (sig / r) ** P["p"] - (sig / r) ** P["q"]) * np.exp(sig / (r - rc))
    for i in range(len(x)):
        for j, k in itertools.combinations([m for m in range(len(x)) if m != i], 2):
            rij, rik = x[j] - x[i], x[k] - x[i]
            dij, dik = np.linalg.norm(rij), np.linalg.norm(rik)
            if dij < rc and dik < rc:
                cos = rij @ rik / (dij * dik)
                e += (
                    P["lam"]
                    * eps
                    * (cos - P["cos0"]) ** 2
                    * np.exp(P["gamma"] * sig / (dij - rc))
                    * np.exp(P["gamma"] * sig / (dik - rc))
                )
    return e


def lammps_energy(x: np.ndarray) -> float:
    """LAMMPS's potential energy (kcal/mol) of points ``x`` with examples/mw's system.lmp."""
    from latentcv.cv_models.engines import open_lammps

    lmp = open_lammps()
    try:
        lmp.commands_string(system_commands("mw", 1))
        lmp.command("delete_atoms group all")
        lmp.command("change_box all x final -30 30 y final -30 30 z final -30 30")
        for p in x:
            lmp.command(f"create_atoms 1 single {p[0]:.12f} {p[1]:.12f} {p[2]:.12f} units box")
        lmp.command("run 0")
        return float(lmp.get_thermo("pe"))
    finally:
        lmp.close()


def test_sw_file_has_the_published_parameters():
    line = next(
        ln.split() for ln in (MW.template_dir / "mW.sw").read_text().splitlines() if ln.strip() and ln[0] != "#"
    )
    assert line[:3] == ["O", "O", "O"]
    values = [float(v) for v in line[3:]]
    expected = [PUBLISHED[k] for k in ("epsilon", "sigma", "a", "lam", "gamma", "cos0", "A", "B", "p", "q")]
    assert np.allclose(values[:10], expected, rtol=1e-12, atol=1e-12) and values[10] == 0.0


@pytest.mark.parametrize("n", [2, 3, 5])
def test_lammps_energy_equals_the_stillinger_weber_formula(n):
    """Pairs and three-body angles inside the cutoff (a sigma = 4.3065 A): LAMMPS with mW.sw
    gives the energy of the published formula and parameters."""
    rng = np.random.default_rng(n)
    x = np.zeros((n, 3))
    for k in range(1, n):  # each new molecule 2.4-3.6 A from a random earlier one
        d = rng.normal(size=3)
        x[k] = x[rng.integers(k)] + rng.uniform(2.4, 3.6) * d / np.linalg.norm(d)
    ref = sw_energy(x)
    assert ref != 0.0
    assert lammps_energy(x) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_system_commands_units_and_lattices():
    assert MW.units == "real" and MW.length_unit == "A" and SYSTEMS["lj"].units == "lj"
    assert "variable units index real" in system_commands("mw", 2)
    with pytest.raises(ValueError, match="real units only"):
        system_commands("mw", 2, units="lj")
    with pytest.raises(ValueError, match="one lattice"):
        system_commands("lj", 2, lattice="ic")


def neighbour_distances(frame, k: int = 6) -> np.ndarray:
    """[N, k] sorted distances to the k nearest neighbours (periodic)."""
    d = minimum_image(frame.positions[None] - frame.positions[:, None], frame.cell)
    r = np.sort(np.linalg.norm(d, axis=-1), axis=1)
    return r[:, 1 : k + 1]


@pytest.mark.parametrize("lattice", ["ih", "ic"])
def test_ice_lattices_are_tetrahedral(lattice):
    """8 n^3 molecules; 4 neighbours at the O-O distance of the density (ice Ic and ideal
    Ih share it: d = (sqrt(3)/4) (8/rho)^(1/3)), the next ones sqrt(8/3) d away; at the
    default density 0.0327 / A^3 (0.978 g/cm^3) d = 2.71 A, at 0.92 g/cm^3 d = 2.76 A."""
    for density in (MW.density, 0.92 * AVOGADRO / 18.015 / 1e24):
        f = lattice_frame_lammps("mw", 3, lattice=lattice, density=density)
        assert f.n_atoms == 8 * 27 and f.length_unit == "A"
        d = np.sqrt(3.0) / 4.0 * (8.0 / density) ** (1.0 / 3.0)
        r = neighbour_distances(f)
        assert np.allclose(r[:, :4], d, rtol=1e-6)
        assert np.allclose(r[:, 4], np.sqrt(8.0 / 3.0) * d, rtol=1e-6)
    assert d == pytest.approx(2.76, abs=0.005)


@pytest.mark.parametrize("lattice, label", [("ih", "hexagonal"), ("ic", "cubic")])
def test_chill_plus_labels_perfect_ice(lattice, label):
    f = lattice_frame_lammps("mw", 3, lattice=lattice)
    r = chill_plus_frame(f)
    assert r.fraction(label) == 1.0 and r.ice_fraction == 1.0 and r.largest_cluster == f.n_atoms
    # invariant to rotation and translation (triclinic cell of the rotated box)
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    r2 = chill_plus(f.positions @ rot.T + 1.7, f.cell @ rot.T)
    assert np.array_equal(r2.labels, r.labels)


def test_refine_and_quality_scores_judge_ice_by_chill_plus():
    """The per-molecule reference of the CV-quality scores (``latentcv refine`` scores its
    harvested frames with it) is CHILL+ for water: all of a perfect ice crystal, none of
    a gas."""
    from latentcv.cv_models.analysis.cv_quality import crystalline_molecules
    from latentcv.cv_models.data.frames import Frame

    ice = lattice_frame_lammps("mw", 3, lattice="ih")
    assert crystalline_molecules(ice, "chill_plus", 3.5).all()
    rng = np.random.default_rng(2)
    gas = Frame(rng.uniform(0, 20, (260, 3)), np.eye(3) * 20.0, np.arange(260), np.zeros(260, np.int64))
    assert crystalline_molecules(gas, "chill_plus", 3.5).mean() < 0.02
    assert crystalline_molecules(ice, "ten_wolde", 3.5).mean() < 0.5  # the judge matters: ten Wolde misreads ice


def test_chill_plus_labels_a_random_gas_liquid():
    rng = np.random.default_rng(1)
    cell = np.eye(3) * 20.0
    r = chill_plus(rng.uniform(0, 20, size=(260, 3)), cell)
    assert r.ice_fraction < 0.02 and set(np.unique(r.labels)) <= set(range(len(ICE_LABELS)))


def test_boxes_of_1000_and_4096_molecules():
    """5 and 8 cells per edge: the default box and the ~4000-molecule one."""
    for cells, n in ((5, 1000), (8, 4096)):
        for lattice in ("ih", "ic"):
            assert lattice_frame_lammps("mw", cells, lattice=lattice).n_atoms == n == MW.n_molecules(cells)


def thermalised(lattice: str, steps: int, cells: int = 3, temp: float = MW.temperature) -> np.ndarray:
    """Positions and cell after ``steps`` NPT steps of the ice lattice at ``temp`` (1 atm)."""
    from latentcv.cv_models.engines import open_lammps

    lmp = open_lammps()
    try:
        lmp.commands_string(system_commands("mw", cells, lattice=lattice))
        lmp.commands_string(
            f"velocity all create {temp} 7 mom yes rot yes dist gaussian\n"
            f"fix md all npt temp {temp} {temp} {MW.tdamp} aniso 1.0 1.0 {MW.pdamp}\nrun {steps}"
        )
        x = np.array(lmp.numpy.extract_atom("x"))[: lmp.get_natoms()]
        xlo, xhi, xy, yz, xz, _, _ = lmp.extract_box()
    finally:
        lmp.close()
    lx, ly, lz = np.asarray(xhi) - np.asarray(xlo)
    return x, np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]])


@pytest.mark.parametrize("lattice, label", [("ih", "hexagonal"), ("ic", "cubic")])
def test_chill_plus_labels_thermalised_ice(lattice, label):
    """2000 steps (20 ps) at the state point (230 K): >= 95 % of the molecules keep their type."""
    x, cell = thermalised(lattice, 2000)
    r = chill_plus(x, cell)
    assert r.fraction(label) >= 0.95, {k: r.fraction(k) for k in ICE_LABELS}


def test_generated_ice_and_water_stay_so_at_the_state_point(tmp_path):
    """`latentcv generate mw` (tiny boxes of 216 molecules): ice Ih equilibrated and sampled
    for 5000 steps (50 ps) at 230 K stays >= 95 % ice, the melt quenched to 230 K stays
    <= 5 % (CHILL+, the system's crystal judge); frames in Å with the phases' labels."""
    from latentcv.cv_models.app.metad_run import crystal_fraction
    from latentcv.cv_models.data.frames import CRYSTAL, MELT
    from latentcv.cv_models.generate import GeneratorConfig, generate

    cfg = GeneratorConfig.preset(
        "tiny", "mw", phases=("crystal", "melt"), equil_steps=1000, prod_steps=5000, dump_every=1000
    )
    by_name = generate(cfg, tmp_path, progress=False).by_trajectory()
    assert sorted(by_name) == ["mw-crystal-0", "mw-melt-0"]
    for name, label, lo, hi in (("mw-crystal-0", CRYSTAL, 0.95, 1.0), ("mw-melt-0", MELT, 0.0, 0.05)):
        frames = by_name[name]
        assert len(frames) == 6 and all(f.label == label and f.length_unit == "A" for f in frames)
        ice = [crystal_fraction(f, "mw", MW.tenwolde_cutoff) for f in frames]
        assert lo <= min(ice) and max(ice) <= hi, (name, ice)
        grams_per_cm3 = [18.015 * f.n_atoms / AVOGADRO / (np.linalg.det(f.cell) * 1e-24) for f in frames]
        assert 0.95 < np.mean(grams_per_cm3) < 1.03, (name, grams_per_cm3)


def test_ovito_agrees_with_chill_plus(tmp_path):
    """Where OVITO is installed: its own CHILL+ gives the same label to every molecule, and
    its diamond-structure identification (first and second neighbour shells) brackets the
    CHILL+ ice share, between the cubic + hexagonal diamond core and the core with its
    neighbour classes (within 0.05), on perfect and thermalised Ih and Ic, a thermalised
    Ih slab half melted, and a random liquid-like configuration."""
    pytest.importorskip("ovito", reason="OVITO is optional (make bench-deps); CHILL+ alone is tested without it")
    from latentcv.cv_models.analysis.ice import ovito_chill_plus, ovito_diamond
    from latentcv.cv_models.data.frames import Frame

    def frame(x, cell):
        return Frame(positions=x, cell=cell, molecule=np.arange(len(x)), species=np.zeros(len(x), dtype=np.int64))

    frames = [lattice_frame_lammps("mw", 3, lattice=lat) for lat in ("ih", "ic")]
    frames += [frame(*thermalised(lat, 1000)) for lat in ("ih", "ic")]
    x, cell = thermalised("ih", 1000, cells=4)
    frames.append(frame(np.where((x[:, 2] > 0.5 * cell[2, 2])[:, None], x + 0.8 * _noise(x), x), cell))
    frames.append(frame(np.random.default_rng(2).uniform(0, 20, size=(260, 3)), np.eye(3) * 20.0))
    for f in frames:
        r = chill_plus_frame(f)
        assert np.array_equal(ovito_chill_plus(f), r.labels)
        d = ovito_diamond(f)
        core, everything = d["cubic"] + d["hexagonal"], 1.0 - d["other"]
        assert core - 0.05 <= r.ice_fraction <= everything + 0.05, (r.ice_fraction, d)


def _noise(x: np.ndarray) -> np.ndarray:
    return np.random.default_rng(3).normal(size=x.shape)


COEXISTENCE_STEPS = 20000  # 200 ps; measured: 0.30 -> 0.54 ice at T_m - 10 K, 0.26 -> 0.00 at T_m + 10 K


def test_ice_grows_below_and_melts_above_the_published_melting_point(tmp_path):
    """Half-ice slabs of 720 molecules (examples/mw/interface.lmp, secondary prism faces),
    20 000 steps at T_m - 10 K and T_m + 10 K: the ice share (CHILL+) rises below and falls
    above (benchmarks/mw_melting.py brackets T_m closer, with longer runs)."""
    import benchmarks.mw_melting as bench

    runs = bench.melting_runs([T_M - 10.0, T_M + 10.0], 3, 10, COEXISTENCE_STEPS, 1000, tmp_path, False)
    start, end, word = bench.verdict(runs[T_M - 10.0][1])
    assert word == "grew" and end > start + 0.1, (start, end)
    start, end, word = bench.verdict(runs[T_M + 10.0][1])
    assert word == "melted" and end < 0.5 * start, (start, end)


def test_unbiased_metadynamics_protocol_runs_and_is_judged_by_chill_plus(tmp_path):
    """examples/mw/metad.lmp through the one metadynamics runner, without bias: the melt
    prepared and run at 230 K, its frames judged liquid by CHILL+."""
    from latentcv.cv_models.app.metad_run import MetadRunConfig, judge_name, run_metadynamics

    cfg = MetadRunConfig(
        tmp_path, None, "mw", cells=3, steps=1000, melt_steps=1500, equil_steps=300, dump_every=250, progress=False
    )
    run = run_metadynamics(cfg)
    assert run.steps_run == 1000 and not run.biased and run.crystallised_at is None
    assert run.steps == [0, 250, 500, 750, 1000] and max(run.fraction) < 0.05, run.fraction
    assert judge_name("mw") == "CHILL+ ice fraction (cubic + hexagonal)"
