"""The whole chain in LAMMPS: fix plumed → PLUMED → LATENT_CV → C++ core → model file.

The bias forces and virial LAMMPS applies are compared with the CV gradient computed
independently by the core on the same positions, in `units lj` and `units real`.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentcv.cv_models.native import paths
from latentcv.cv_models.native import core as native
from latentcv.cv_models.data.plumed_table import read_plumed_table
from tests.gradcheck import check_gradient
from tests.lammps_scaffold import STRESS, VOIGT, add_fix_plumed, jiggle, lj_system, pressure_tensor, snapshot, thermo

# units: (LJ lattice density (real: argon's lattice, tests/lammps_scaffold.py), jiggle, model unit,
# model cutoff, plumed energy per MD energy)
SYSTEMS = {
    "lj": (0.9, 0.08, "lj", 1.5, 1.0),
    "real": (None, 0.3, "A", 5.0, 4.184),
}


def build(lmp, units: str, triclinic: bool) -> None:
    density, amount, *_ = SYSTEMS[units]
    lmp.commands_string(
        lj_system(3, density=density, units=units, tilt=(1.0, 0.5, -0.5) if triclinic else None)
        + jiggle(amount)
        + thermo(STRESS)
    )


@pytest.mark.parametrize(
    "units,triclinic,flags",
    [("lj", False, ""), ("lj", True, ""), ("real", False, ""), ("real", True, ""), ("real", True, "FULL_DERIVATIVES")],
)
def test_restraint_on_latent_cv(lmp, tmp_path, coordination_model, units, triclinic, flags):
    *_, model_unit, cutoff, energy = SYSTEMS[units]
    model_path = coordination_model(atoms_per_molecule=1, cutoff=cutoff, length_unit=model_unit)
    build(lmp, units, triclinic)
    lmp.command("run 0")
    x, f0, th0, cell = snapshot(lmp)
    n = len(x)
    core = native.Model(str(model_path))
    s, g, gc = core.evaluate(x, cell)
    s, g, gc = s[0], g[0], gc[0]  # cv.mean
    s0, k = 1.2 * s, 300.0  # MD energy units
    dat = tmp_path / "plumed.dat"
    dat.write_text(
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={model_path} ATOMS=1-{n} {flags}\n"
        f"RESTRAINT ARG=cv.mean AT={s0:.17g} KAPPA={k * energy:.17g}\n"
    )
    add_fix_plumed(lmp, dat, tmp_path / "plumed.log", keywords=STRESS)
    lmp.command("run 0")
    x1, f1, th1, _ = snapshot(lmp)
    # positions may have been wrapped by `run 0`; the CV may not change
    np.testing.assert_allclose(core.evaluate(x1, cell, gradients=False)[0][0], s, rtol=1e-12)

    expected = -k * (s - s0) * g
    scale = np.abs(expected).max()
    assert scale > 1e-3 * np.abs(f0).max()
    np.testing.assert_allclose(f1 - f0, expected, rtol=0, atol=1e-9 * scale)
    bias = 0.5 * k * (s - s0) ** 2
    assert th1["f_p"] == pytest.approx(bias, rel=1e-9)

    # virial of the bias: W = -κ(s-s0) (Σ r ⊗ ∂s/∂r + Hᵀ ∂s/∂H); ΔP = W nktv2p / V
    w = -k * (s - s0) * (x.T @ g + cell.T @ gc)
    nktv2p = {"lj": 1.0, "real": 68568.415}[units]
    volume = abs(np.linalg.det(cell))
    dp = pressure_tensor(th1) - pressure_tensor(th0)
    dp_expected = np.array([0.5 * (w[a, b] + w[b, a]) for a, b in VOIGT]) * nktv2p / volume
    np.testing.assert_allclose(dp, dp_expected, rtol=1e-6, atol=1e-9 * np.abs(dp_expected).max())

    # and independently: the trace of W is -dU/dδ under a uniform scaling (1+δ) of box and atoms
    # (U = k (s - s0) s; tolerance max(1e-5 |dU/dδ|, 1e-12))
    check_gradient(
        lambda p, c: k * (s - s0) * core.evaluate(p, c, gradients=False)[0][0],
        (x, cell),
        eps=1e-6,
        directions=[((x, cell), -np.trace(w))],
        rtol=1e-5,
        floor=1e-7,
        relative_to="numerical",
    )


@pytest.mark.parametrize("units", ["lj", "real"])
def test_metad_on_latent_cv_deposits_hills(lmp, tmp_path, coordination_model, units):
    *_, model_unit, cutoff, _ = SYSTEMS[units]
    model_path = coordination_model(atoms_per_molecule=1, cutoff=cutoff, length_unit=model_unit)
    temp, dt = (1.2, 0.005) if units == "lj" else (150.0, 2.0)
    dat = tmp_path / "plumed.dat"
    dat.write_text(
        f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={{m}} ATOMS=1-108\n".format(m=model_path)
        + f"metad: METAD ARG=cv.mean SIGMA=0.05 HEIGHT=1.0 PACE=10 TEMP={temp} BIASFACTOR=5 FILE={tmp_path / 'HILLS'}\n"
        f"PRINT ARG=cv.mean,metad.bias STRIDE=10 FILE={tmp_path / 'COLVAR'}\n"
    )
    build(lmp, units, False)
    lmp.commands_string(f"""
        timestep {dt}
        velocity all create {temp} 7 mom yes rot yes
        fix md all nvt temp {temp} {temp} {100 * dt}
    """)
    add_fix_plumed(lmp, dat, tmp_path / "plumed.log")
    lmp.command("run 200")
    bias_last = lmp.extract_fix("p", 0, 0)
    lmp.command("unfix p")  # finalises PLUMED: flushes HILLS and COLVAR
    hills = read_plumed_table(tmp_path / "HILLS").data
    colvar = read_plumed_table(tmp_path / "COLVAR").data
    assert hills.shape[0] == 20  # one hill every PACE=10 steps, steps 0..190
    assert colvar[0, 2] == 0.0 and colvar[-1, 2] > 0.0  # the bias grows from zero
    assert bias_last > 0.0
    assert np.ptp(colvar[:, 1]) > 0  # the CV moves


def test_latent_cv_error_in_lammps_is_a_lammps_error(lmp, tmp_path):
    """A bad LATENT_CV line surfaces as a LAMMPS error with PLUMED's message, not a crash."""
    dat = tmp_path / "plumed.dat"
    dat.write_text(
        f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={tmp_path / 'absent.pt'} ATOMS=1-108\n"
    )
    build(lmp, "lj", False)
    with pytest.raises(Exception, match="absent.pt.*not found"):
        lmp.command(f"fix p all plumed plumedfile {dat} outfile {tmp_path / 'plumed.log'}")
        lmp.command("run 0")
