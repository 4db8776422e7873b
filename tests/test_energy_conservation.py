"""NVE with a RESTRAINT on LATENT_CV conserves energy (bias included) as well as plain MD.

A CV with a discontinuous value or inexact forces shows up here as an energy drift that
the unbiased run does not have.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentcv.cv_models import paths
from latentcv.cv_models.engines import open_lammps
from latentcv.export.analytic import save_coordination_model

SETUP = """
units lj
atom_style atomic
lattice fcc 0.85
region box block 0 4 0 4 0 4
create_box 1 box
create_atoms 1 box
mass 1 1.0
pair_style lj/cut 3.0
pair_modify shift yes
pair_coeff 1 1 1.0 1.0
neighbor 0.3 bin
velocity all create 1.6 4928 mom yes rot yes dist gaussian
timestep 0.002
fix md all nve
thermo_style custom step pe ke etotal
thermo_modify norm no
run 500
"""


def energy_trace(plumed_dat=None, chunks: int = 100, chunk: int = 20, dt: float = 0.002):
    """Total energy (bias included) every `chunk` steps, and the bias itself."""
    lmp = open_lammps(load_fix_plumed=plumed_dat is not None)
    try:
        lmp.commands_string(SETUP)
        lmp.command(f"timestep {dt}")
        if plumed_dat is not None:
            lmp.command(f"fix p all plumed plumedfile {plumed_dat} outfile {plumed_dat.with_suffix('.log')}")
        etot, bias = [], []
        for c in range(chunks):
            lmp.command(f"run {chunk} post no" + (" pre no" if c else ""))
            etot.append(lmp.get_thermo("etotal"))
            bias.append(lmp.extract_fix("p", 0, 0) if plumed_dat is not None else 0.0)
        return np.array(etot), np.array(bias)
    finally:
        lmp.close()


def drift(etot: np.ndarray) -> float:
    """Largest excursion of the total energy from its start, per atom."""
    return float(np.abs(etot - etot[0]).max()) / 256


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A small autoencoder trained on synthetic LJ crystal/melt frames, exported and checked."""
    from latentcv.export.from_checkpoint import export_checkpoint
    from export_helpers import train_tiny

    d = tmp_path_factory.mktemp("trained")
    return export_checkpoint(train_tiny(d / "train", 1), d / "model.pt", log=lambda line: None)


@pytest.mark.parametrize("which", ["analytic", "trained"])
def test_restraint_on_latent_cv_conserves_energy(tmp_path, which, request):
    if which == "analytic":
        model = save_coordination_model(tmp_path / "m.pt", atoms_per_molecule=1, cutoff=1.6, length_unit="lj")
        restraint = "RESTRAINT ARG=cv.mean AT=2.0 KAPPA=2000"
    else:
        model = request.getfixturevalue("trained_model")
        restraint = "RESTRAINT ARG=cv.proj AT=1.0 KAPPA=2000"
    plain, _ = energy_trace()
    dat = tmp_path / "plumed.dat"
    dat.write_text(
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={model} ATOMS=1-256\n"
        f"{restraint}\n"
    )
    biased, bias = energy_trace(dat)
    # the bias is strong: it moves by many times the unbiased drift
    assert np.ptp(bias) > 20 * drift(plain) * 256
    assert drift(biased) < 10 * drift(plain), (drift(biased), drift(plain))
    # what drift there is is integration error: it falls like dt² (inexact forces would not)
    finer, _ = energy_trace(dat, chunks=100, chunk=40, dt=0.001)
    assert drift(finer) < 0.4 * drift(biased), (drift(finer), drift(biased))
