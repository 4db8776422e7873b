"""NVE with a RESTRAINT on LATENT_CV conserves energy (bias included) as well as plain MD.

A CV with a discontinuous value or inexact forces shows up here as an energy drift that
the unbiased run does not have.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentcv.cv_models.native import paths
from tests.lammps_scaffold import add_fix_plumed, lammps, lj_system, thermo

# override: cutoff 3.0, not 2.5: the model whose drift the bounds were set on (a smaller force jump at the cutoff)
SETUP = (
    lj_system(4, density=0.85, dt=0.002)
    + "pair_style lj/cut 3.0\npair_coeff 1 1 1.0 1.0\n"
    + """\
velocity all create 1.6 4928 mom yes rot yes dist gaussian
fix md all nve
"""
    + thermo("step pe ke etotal")
    + "run 500\n"
)


def energy_trace(plumed_dat=None, chunks: int = 100, chunk: int = 20, dt: float = 0.002):
    """Total energy (bias included) every `chunk` steps, and the bias itself."""
    with lammps(plumed=plumed_dat is not None) as lmp:
        lmp.commands_string(SETUP)
        lmp.command(f"timestep {dt}")
        if plumed_dat is not None:
            add_fix_plumed(lmp, plumed_dat, plumed_dat.with_suffix(".log"))
        etot, bias = [], []
        for c in range(chunks):
            lmp.command(f"run {chunk} post no" + (" pre no" if c else ""))
            etot.append(lmp.get_thermo("etotal"))
            bias.append(lmp.extract_fix("p", 0, 0) if plumed_dat is not None else 0.0)
        return np.array(etot), np.array(bias)


def drift(etot: np.ndarray) -> float:
    """Largest excursion of the total energy from its start, per atom."""
    return float(np.abs(etot - etot[0]).max()) / 256


@pytest.mark.parametrize("which", ["analytic", "trained"])
def test_restraint_on_latent_cv_conserves_energy(tmp_path, which, coordination_model, tiny_models):
    if which == "analytic":
        model = coordination_model(atoms_per_molecule=1, cutoff=1.6, length_unit="lj")
        restraint = "RESTRAINT ARG=cv.mean AT=2.0 KAPPA=2000"
    else:
        model = tiny_models.exported(1)  # the tiny autoencoder on synthetic LJ crystal/melt frames
        restraint = "RESTRAINT ARG=cv.proj AT=1.0 KAPPA=2000"
    plain, _ = energy_trace()
    dat = tmp_path / "plumed.dat"
    dat.write_text(f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={model} ATOMS=1-256\n{restraint}\n")
    biased, bias = energy_trace(dat)
    # the bias is strong: it moves by many times the unbiased drift
    assert np.ptp(bias) > 20 * drift(plain) * 256
    assert drift(biased) < 10 * drift(plain), (drift(biased), drift(plain))
    # what drift there is is integration error: it falls like dt² (inexact forces would not)
    finer, _ = energy_trace(dat, chunks=100, chunk=40, dt=0.001)
    assert drift(finer) < 0.4 * drift(biased), (drift(finer), drift(biased))


def test_multiple_time_stepping_bias_conserves_energy(tmp_path, coordination_model):
    """A RESTRAINT with STRIDE 5 (PLUMED's impulse multiple time stepping, the default bias
    stride of latentcv's METAD): the forces every 5th step, 5x as strong, still conserve the
    total energy to within a few times the every-step bias's drift, and that drift is
    integration error (it falls with dt); a wrong impulse scale (forces not x5) would drift
    with the bias."""
    model = coordination_model(atoms_per_molecule=1, cutoff=1.6, length_unit="lj")
    head = f"LOAD FILE={paths.plumed_plugin_path()}\ncv: LATENT_CV MODEL={model} ATOMS=1-256\n"
    every, strided = tmp_path / "every.dat", tmp_path / "strided.dat"
    every.write_text(head + "RESTRAINT ARG=cv.mean AT=2.0 KAPPA=2000\n")
    strided.write_text(head + "RESTRAINT ARG=cv.mean AT=2.0 KAPPA=2000 STRIDE=5\n")
    plain, _ = energy_trace()
    one, bias = energy_trace(every)
    five, bias5 = energy_trace(strided)
    assert np.ptp(bias5) > 20 * drift(plain) * 256  # the bias does work
    assert drift(five) < 5 * max(drift(one), drift(plain)), (drift(five), drift(one), drift(plain))
    finer, _ = energy_trace(strided, chunks=100, chunk=40, dt=0.001)
    assert drift(finer) < 0.5 * drift(five), (drift(finer), drift(five))
