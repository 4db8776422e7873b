"""`mpiexec -n N lmp` with `fix plumed` and LATENT_CV: the fix gathers the atoms on rank 0,
where PLUMED runs, and scatters the forces back. 2 and 4 ranks reproduce 1 rank: bias,
forces and virial at step 0 to 1e-10, and after 1 000 steps to round-off growth."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.lammps_scaffold import MPIEXEC, lj_system, lmp_command

# the starting structure is made once on one rank and written to a data file (without pair
# coefficients: INPUT sets them): LAMMPS numbers the atoms of create_atoms by processor,
# so IDs (and anything keyed on them) depend on the rank count
SETUP = (
    lj_system(4, density=0.8442)
    + """\
variable dx atom 0.05*sin(7.1*id)
variable dy atom 0.05*sin(3.3*id+1)
variable dz atom 0.05*cos(5.7*id)
displace_atoms all move v_dx v_dy v_dz units box
velocity all create 1.2 87287 loop geom
write_data {data} nocoeff
"""
)

# the runs read that data file instead of building the lattice; LJ 2.5 as in system.lmp
INPUT = """\
units lj
read_data {data}
pair_style lj/cut 2.5
pair_coeff 1 1 1.0 1.0
fix md all nve
timestep 0.004
fix p all plumed plumedfile plumed.dat outfile plumed.log
thermo_style custom step pe f_p pxx pyy pzz pxy pxz pyz
thermo_modify format float %.17g
thermo {steps}
dump forces all custom {steps} forces.dump id fx fy fz
dump_modify forces sort id format float %.17g
run {steps}
"""


def _plumed_dat(model: Path) -> str:
    return (
        f"LOAD FILE={_plugin()}\n"
        f"cv: LATENT_CV MODEL={model} ATOMS=1-256\n"
        "d: DISTANCE ATOMS=1,100\n"
        "RESTRAINT ARG=cv.mean AT=3.0 KAPPA=20.0\n"
        "RESTRAINT ARG=d AT=2.0 KAPPA=5.0\n"
    )


def _plugin() -> str:
    from latentcv.cv_models.native import paths

    return str(paths.plumed_plugin_path())


def _lmp(workdir: Path, ranks: int) -> None:
    proc = subprocess.run(
        lmp_command(ranks, log="log.lammps"), cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _run(workdir: Path, ranks: int, steps: int, model: Path, data: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    workdir.mkdir()
    (workdir / "plumed.dat").write_text(_plumed_dat(model))
    (workdir / "in.lmp").write_text(INPUT.format(steps=steps, data=data))
    _lmp(workdir, ranks)
    lines = (workdir / "log.lammps").read_text().splitlines()
    head = next(i for i, l in enumerate(lines) if l.split()[:2] == ["Step", "PotEng"])
    thermo = np.array([[float(x) for x in l.split()] for l in lines[head + 1 : head + 3]])
    dump = (workdir / "forces.dump").read_text().split("ITEM: ATOMS id fx fy fz\n")[1:]
    forces = [np.array([[float(x) for x in l.split()] for l in block.splitlines()[:256]]) for block in dump]
    return thermo, forces


@pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec from the mpich wheel")
def test_more_ranks_reproduce_one_rank(tmp_path, coordination_model):
    model = coordination_model(atoms_per_molecule=1, cutoff=1.5, length_unit="lj")
    data = tmp_path / "start.data"
    (tmp_path / "in.lmp").write_text(SETUP.format(data=data))
    _lmp(tmp_path, 1)
    one = _run(tmp_path / "r1", 1, 1000, model, data)
    assert abs(one[0][0, 2]) > 0.1, "the bias should be far from zero at step 0"
    for ranks in (2, 4):
        many = _run(tmp_path / f"r{ranks}", ranks, 1000, model, data)
        # step 0: bias, pressure tensor (virial included), every force
        np.testing.assert_allclose(many[0][0], one[0][0], rtol=1e-10, atol=1e-10, err_msg=f"{ranks} ranks, step 0")
        np.testing.assert_allclose(many[1][0], one[1][0], rtol=1e-10, atol=1e-10, err_msg=f"{ranks} ranks, forces")
        # after 1000 steps: the same trajectory up to the growth of round-off
        np.testing.assert_allclose(many[0][1], one[0][1], rtol=1e-5, atol=1e-5, err_msg=f"{ranks} ranks, step 1000")
