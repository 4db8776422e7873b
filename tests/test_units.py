"""The same physical frames in LAMMPS `units lj` and `units real` (Å) give the same CV; the one
table of LAMMPS unit styles is the same in Python and C++ and agrees with LAMMPS.

A model trained in reduced units is exported twice: as is (lj), and for Å with σ = 3.405 Å
(`latentcv export --length-unit A --unit-length 3.405`). LAMMPS runs the same argon-like
configuration in both unit systems through fix plumed → LATENT_CV.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from latentcv.cv_models.native import paths
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.synthetic import fcc_positions
from latentcv.cv_models.units import LAMMPS_LENGTH_UNIT, LAMMPS_UNIT_STYLES, NM_PER_UNIT
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
    dat.write_text(
        f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={model} ATOMS=1-{n}\n"
        f"PRINT ARG=cv.* FILE={colvar} FMT=%.15e\n"
    )
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
    fields, data = read_plumed_table(colvar)
    return fields[1:], data[-1, 1:]


def test_same_frames_in_lj_and_real_give_the_same_cv(tmp_path, tiny_models):
    lj_model, a_model = tiny_models.exported(1), tiny_models.exported(1, length_unit="A", unit_length=SIGMA_A)
    rng = np.random.default_rng(5)
    a = (4 / 0.95) ** (1 / 3)  # fcc, reduced density 0.95
    positions = fcc_positions(3, a)[0] + rng.normal(scale=0.05, size=(108, 3))
    positions %= 3 * a
    write_data(tmp_path / "lj.data", positions, [3 * a] * 3, 1.0)
    write_data(tmp_path / "real.data", positions * SIGMA_A, [3 * a * SIGMA_A] * 3, 39.948)
    names_lj, cv_lj = cv_in_lammps(tmp_path, "lj", lj_model, tmp_path / "lj.data", "lj/cut 2.5", "1.0 1.0")
    names_real, cv_real = cv_in_lammps(
        tmp_path, "real", a_model, tmp_path / "real.data", "lj/cut 8.5", f"0.238 {SIGMA_A}"
    )
    assert names_lj == names_real and "proj" in " ".join(names_lj)
    np.testing.assert_allclose(cv_real, cv_lj, rtol=1e-9, atol=1e-12)
    assert np.abs(cv_lj).max() > 0


def test_masses_recorded_at_export_are_checked_in_lammps(lmp, tmp_path, tiny_models):
    """`latentcv export --species-masses` makes LATENT_CV refuse atoms of the wrong mass."""
    model = tiny_models.exported(1, species_masses=[2.0])
    dat = tmp_path / "p.dat"
    dat.write_text(
        f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={model} ATOMS=1-108\n"
        f"PRINT ARG=cv.* FILE={tmp_path / 'COLVAR'}\n"
    )
    lmp.commands_string(lj_system(3, density=0.9))  # atoms of mass 1
    add_fix_plumed(lmp, dat, tmp_path / "p.log")
    with pytest.raises(Exception, match="mass 1 but the model expects species 0 of mass 2"):
        lmp.command("run 0")


def test_the_unit_table_of_fix_plumed_is_the_python_one():
    """cpp/latentcv/lammps_units.h, compiled into fix plumed (here through the core's module), is
    LAMMPS_UNIT_STYLES of cv_models/units.py row for row; lengths agree with NM_PER_UNIT."""
    from latentcv.cv_models.native import core

    assert core.LAMMPS_UNIT_STYLES == [(name, *style) for name, style in LAMMPS_UNIT_STYLES.items()]
    assert LAMMPS_LENGTH_UNIT == {name: style.length_unit for name, style in LAMMPS_UNIT_STYLES.items()}
    for name, style in LAMMPS_UNIT_STYLES.items():
        assert style.nm == (0.0 if name == "lj" else NM_PER_UNIT[style.length_unit])


@pytest.mark.parametrize("units", [u for u in LAMMPS_UNIT_STYLES if u != "lj"])
def test_the_unit_table_agrees_with_lammps_constants(units):
    """Each style's factors (nm, kJ/mol, ps, amu, e) against LAMMPS's own constants of that style:
    1 Å, 1 fs, k_B, m v^2 (amu nm^2/ps^2 = kJ/mol), the Coulomb constant (138.935458 kJ/mol nm/e^2)
    and e. 1e-5: some styles hold older CODATA values in LAMMPS."""
    s = LAMMPS_UNIT_STYLES[units]
    with lammps(plumed=False) as lmp:
        lmp.command(f"units {units}")
        constant = {
            name: lmp.extract_global(name)
            for name in ("angstrom", "femtosecond", "boltz", "mvv2e", "qqr2e", "qelectron")
        }
    rel = 1e-5
    assert s.nm * constant["angstrom"] == pytest.approx(0.1, rel=rel)
    assert s.ps * constant["femtosecond"] == pytest.approx(0.001, rel=rel)
    assert constant["boltz"] * s.kj_per_mol == pytest.approx(0.0083144626181532, rel=rel)
    assert constant["mvv2e"] * s.kj_per_mol == pytest.approx(s.amu * s.nm**2 / s.ps**2, rel=rel)
    assert constant["qqr2e"] * s.kj_per_mol == pytest.approx(138.935458 * s.e**2 / s.nm, rel=rel)
    assert constant["qelectron"] * s.e == pytest.approx(1.0, rel=rel)


def test_length_unit_alone_names_the_frames_own_unit():
    """`latentcv export --length-unit A` of a model trained on Å frames (mW) keeps Å (scale 1);
    a unit other than the frames' is refused with what to do."""
    from latentcv.cv_models.synthetic import molecular_frame
    from latentcv.export.from_checkpoint import ExportFrames, _deployed_check_frames, _length_scale

    rng = np.random.default_rng(0)
    frame = molecular_frame(fcc_positions(2, 4.0)[0], np.eye(3) * 8.0, 1, rng)
    angstrom = dataclasses.replace(frame, length_unit="A")
    frames = ExportFrames([angstrom], [angstrom], [angstrom], "given frames")
    assert _length_scale("A", None) == 1.0 and _length_scale(None, None) == 1.0
    unit, check = _deployed_check_frames(frames, 1, 1.0, "A", 6, log=lambda _: None)
    assert unit == "A" and check[0].positions is angstrom.positions
    with pytest.raises(ValueError, match="trained in A is exported in A"):
        _deployed_check_frames(frames, 1, 1.0, "nm", 6, log=lambda _: None)
    reduced = ExportFrames([frame], [frame], [frame], "given frames")
    assert frame.length_unit == "lj"
    with pytest.raises(ValueError, match="add --unit-length"):
        _deployed_check_frames(reduced, 1, 1.0, "A", 6, log=lambda _: None)
    with pytest.raises(ValueError, match="go together"):
        _length_scale(None, 3.4)
