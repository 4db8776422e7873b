"""Training trajectories of the user's own system (docs/tutorial.md, "Training trajectories
of your own system"): `latentcv system-lmp` writes a system file's LAMMPS lines (read_data of
the user's crystal), and examples/user/{crystal,melt,interface}.lmp make the crystal, melt and
seeded frames from them. The argon-like LJ system of tests/test_system_file.py (units real, K
and atm), a 256-atom fcc crystal; judged by freud's ten Wolde criterion on the dumps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latentcv.cv_models.analysis.crystallinity import freud_largest_cluster, freud_solid, freud_solid_fraction
from latentcv.cv_models.app.cli import main
from latentcv.cv_models.data import read_lammps_dump
from latentcv.cv_models.synthetic import fcc_positions, liquid_positions
from latentcv.cv_models.systems import EXAMPLES
from tests.test_system_file import CUTOFF, SIGMA, write_data, write_system

USER = EXAMPLES / "user"


@pytest.fixture
def system_lmp(tmp_path) -> Path:
    """system.lmp of the argon system file, read_data of a 4 x 4 x 4 fcc crystal (256 atoms)
    at density 0.96 sigma^-3, written by `latentcv system-lmp --data-file`."""
    x, cell = fcc_positions(4, (4 / 0.96) ** (1 / 3) * SIGMA)
    crystal = write_data(tmp_path / "argon-fcc.data", x, cell)
    system = write_system(tmp_path, crystal)  # melt_temperature 239.6 K: tmelt of the inputs
    assert main(["system-lmp", str(system), "-o", str(tmp_path / "system.lmp"), "--data-file", str(crystal)]) == 0
    return tmp_path / "system.lmp"


def run_user_input(name: str, system_lmp: Path, **variables) -> list:
    """Run examples/user/<name>.lmp on ``system_lmp`` in this process; its dumped frames (A)."""
    from latentcv.cv_models.engines import open_lammps

    out = system_lmp.parent
    variables = {
        "system": system_lmp,
        "data": out / f"{name}.data",
        "dump": out / f"{name}.dump",
        **variables,
    }
    lmp = open_lammps(variables=variables)
    try:
        lmp.file(str(USER / f"{name}.lmp"))
    finally:
        lmp.close()
    assert (out / f"{name}.data").is_file()
    return read_lammps_dump(out / f"{name}.dump", units="real")


def solid(frames) -> list[float]:
    return [round(freud_solid_fraction(f, CUTOFF), 3) for f in frames]


def test_user_inputs_make_crystal_melt_and_a_seeded_nucleus(system_lmp):
    """crystal.lmp keeps the crystal (> 0.8 solid), melt.lmp melts it at tmelt (the system
    file's 239.6 K, constant volume) and cools it to 69.5 K (< 0.2 solid), interface.lmp with
    shape sphere and frac 0.3 starts with a crystalline seed in its liquid (0.1-0.7 solid)."""
    crystal = run_user_input("crystal", system_lmp, equil=200, prod=400, every=200)
    melt = run_user_input("melt", system_lmp, melt=400, quench=300, equil=200, prod=400, every=200)
    seeded = run_user_input(
        "interface", system_lmp, shape="sphere", frac=0.3, equil=200, melt=400, relax=50, prod=400, every=200
    )
    assert [len(crystal), len(melt), len(seeded)] == [3, 3, 3]
    assert all(f.positions.shape == (256, 3) and f.length_unit == "A" for f in crystal + melt + seeded)
    fractions = {"crystal": solid(crystal), "melt": solid(melt), "seeded": solid(seeded)}
    print(fractions)
    assert min(fractions["crystal"]) > 0.8, fractions
    assert max(fractions["melt"]) < 0.2, fractions
    assert 0.1 < fractions["seeded"][0] < 0.7, fractions
    # one ball of crystal: the solid atoms form one ten Wolde cluster, within the seed's
    # radius (frac 0.3 of the box volume) plus one sigma of their centre
    first = seeded[0]
    crystalline = freud_solid(first, CUTOFF)
    assert freud_largest_cluster(first, CUTOFF) >= 0.9 * crystalline.sum()
    centre = first.positions[crystalline].mean(axis=0)  # the seed sits mid-box: no wrapping
    r_seed = (3 * 0.3 * np.linalg.det(first.cell) / (4 * np.pi)) ** (1 / 3)
    assert np.mean(np.linalg.norm(first.positions[crystalline] - centre, axis=1) < r_seed + SIGMA) > 0.9


def test_system_lmp_writes_the_data_file_override(tmp_path, capsys):
    """--data-file replaces the system file's data file in read_data, even one that does not
    exist yet (the melt a later run makes); a missing system or data file is refused, naming
    the fix; so is a melt without a melting temperature (already_melt: tmelt = temp)."""
    cell = fcc_positions(3, (4 / 0.96) ** (1 / 3) * SIGMA)[1]
    melt = write_data(
        tmp_path / "melt.data", liquid_positions(108, cell, np.random.default_rng(0), r_min=0.95 * SIGMA), cell
    )
    crystal = write_data(tmp_path / "crystal.data", *fcc_positions(3, (4 / 0.96) ** (1 / 3) * SIGMA))
    system = write_system(tmp_path, melt, already_melt=True, melt_temperature=None)
    out = tmp_path / "system.lmp"
    assert main(["system-lmp", str(system), "-o", str(out), "--data-file", str(crystal)]) == 0
    text = out.read_text()
    assert f"read_data {crystal}" in text and "melt.data" not in text
    assert 'variable columns string "id type x y z"' in text and "units           real" in text
    assert "variable temp     index 69.494" in text and "variable tmelt    index 69.494" in text
    assert "108 atoms of" in capsys.readouterr().out
    with pytest.raises(Exception, match="tmelt_must_be_above_temp"):  # already_melt: tmelt = temp
        run_user_input("melt", out)

    assert main(["system-lmp", str(system), "-o", str(out)]) == 0  # no override: the system file's
    assert f"read_data {melt}" in out.read_text()

    melt.unlink()  # the system file's own data file not made yet: the override still serves
    assert main(["system-lmp", str(system), "-o", str(out), "--data-file", str(crystal)]) == 0
    assert f"read_data {crystal}" in out.read_text()
    capsys.readouterr()

    assert main(["system-lmp", str(tmp_path / "none.toml"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "none.toml not found: give the TOML file that describes your system" in err
    assert "latentcv system-lmp my_system.toml -o system.lmp" in err
    assert main(["system-lmp", str(system), "-o", str(out), "--data-file", str(tmp_path / "no.data")]) == 2
    assert "no.data not found: give your crystal's LAMMPS data file" in capsys.readouterr().err
    assert main(["system-lmp", str(system), "-o", str(out)]) == 2  # neither: the system file's is missing
    assert "data_file = " in capsys.readouterr().err
    assert (
        main(["system-lmp", str(system), "-o", str(tmp_path / "no" / "system.lmp"), "--data-file", str(crystal)]) == 2
    )
    assert "create it first (mkdir -p)" in capsys.readouterr().err
