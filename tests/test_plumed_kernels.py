"""The optional -O3 PLUMED kernel (`make plumed-opt`) computes what the bundled one does.

Same PLUMED source and version, different optimisation (and MPI): LATENT_CV (our plugin,
compiled against the bundled headers) must load into it and give the same values, and
PLUMED's own Q6 must give the same CV and forces in a LAMMPS run. Skipped, with the
reason shown (`-rs` in pyproject.toml), when the optional kernel has not been built.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chain_helpers import ORTHORHOMBIC, random_frame, run_plumed_driver
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.native import paths

try:
    OPTIMISED = paths.optimised_plumed_kernel()
except paths.MissingNativeFile as exc:
    pytest.skip(f"optional kernel not built: {exc}", allow_module_level=True)

RUNNER = Path(__file__).with_name("lammps_kernel_run.py")
N_LAMMPS = 256  # lammps_kernel_run.py: fcc 4x4x4
Q6 = f"q6: Q6 SPECIES=1-{N_LAMMPS} SWITCH={{RATIONAL D_0=1.3 R_0=0.2 D_MAX=1.5}} VMEAN\n"


def _version(optimised: bool) -> str:
    cmd = [str(paths.plumed_executable(optimised=optimised))]
    cmd += ["--no-mpi"] if optimised else []
    out = subprocess.run(
        cmd + ["info", "--long-version"],
        env=paths.plumed_environment(optimised=optimised),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_same_plumed_version():
    assert _version(optimised=True) == _version(optimised=False)


def test_latent_cv_and_q6_in_driver_match_bundled(tmp_path, coordination_model):
    """`plumed driver` of both kernels on the same frames: LATENT_CV values and
    derivatives to the last bit (our code does the work), Q6's value to 1e-10 (its atom
    derivatives cannot be dumped; the LAMMPS test below compares its forces)."""
    n = 24
    model = coordination_model(atoms_per_molecule=1, cutoff=1.5, length_unit="nm")
    frames = [(random_frame(n, ORTHORHOMBIC, seed=s), ORTHORHOMBIC) for s in (1, 2)]
    dat = (
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={model} ATOMS=1-{n}\n"
        f"q6: Q6 SPECIES=1-{n} SWITCH={{RATIONAL D_0=1.3 R_0=0.2 D_MAX=1.5}} VMEAN\n"
        "PRINT ARG=cv.*,q6_vmean FILE=COLVAR FMT=%.15e\n"
        "DUMPDERIVATIVES ARG=cv.mean FILE=DERIV FMT=%.15e\n"
    )
    results = {}
    for optimised in (False, True):
        work = tmp_path / ("opt" if optimised else "bundled")
        work.mkdir()
        proc = run_plumed_driver(work, dat, frames, ["--length-units", "nm"], optimised=optimised)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        log = (work / "plumed.log").read_text() if (work / "plumed.log").exists() else proc.stdout
        root = paths.plumed_environment(optimised=optimised)["PLUMED_ROOT"]
        assert root in log, f"PLUMED log does not name {root}"
        results[optimised] = (read_plumed_table(work / "COLVAR"), read_plumed_table(work / "DERIV"))
    (f0, c0), (_, d0) = results[False]
    (f1, c1), (_, d1) = results[True]
    assert f0 == f1 == ["time", "cv.mean", "cv.meansq", "q6_vmean"]
    assert np.abs(c0[:, 3]).min() > 0.05  # Q6 is not trivially zero on these frames
    np.testing.assert_allclose(c1[:, 1:3], c0[:, 1:3], rtol=1e-14, atol=0)
    np.testing.assert_allclose(c1[:, 3], c0[:, 3], rtol=1e-10)
    assert d0.shape == d1.shape == (2 * (3 * n + 9), 3)
    np.testing.assert_allclose(d1[:, 2], d0[:, 2], rtol=0, atol=1e-14 * np.abs(d0[:, 2]).max())


def _lammps(tmp_path: Path, kernel: str, body: str, steps: int):
    work = tmp_path / kernel.replace("/", "_")[-40:]
    work.mkdir()
    dat = work / "plumed.dat"
    dat.write_text(body + "PRINT ARG=q6_vmean,cv.mean,rq.bias,rc.bias FILE=COLVAR FMT=%.15e\n")
    out, log = work / "out.npz", work / "log.lammps"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(dat), kernel, str(steps), str(out), str(log)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return np.load(out), read_plumed_table(work / "COLVAR"), log.read_text()


def test_lammps_q6_and_latent_cv_match_bundled(tmp_path, coordination_model):
    """The same short biased LAMMPS run (Q6 VMEAN + LATENT_CV, each restrained) with
    `kernel optimised` and `kernel bundled`: same CVs at every step, same forces."""
    model = coordination_model(atoms_per_molecule=1, cutoff=1.5, length_unit="lj")
    body = (
        f"LOAD FILE={paths.plumed_plugin_path()}\n" + Q6 + f"cv: LATENT_CV MODEL={model} ATOMS=1-{N_LAMMPS}\n"
        "rq: RESTRAINT ARG=q6_vmean AT=0.3 KAPPA=50\n"
        "rc: RESTRAINT ARG=cv.mean AT=1.0 KAPPA=10\n"
    )
    steps = 10
    out_b, (fields_b, colvar_b), log_b = _lammps(tmp_path, "bundled", body, steps)
    out_o, (fields_o, colvar_o), log_o = _lammps(tmp_path, "optimised", body, steps)

    assert f"PLUMED kernel {OPTIMISED} (from keyword kernel optimised" in log_o
    assert f"PLUMED kernel {paths.plumed_kernel_path()}" in log_b

    assert fields_b == fields_o and "q6_vmean" in fields_b and "cv.mean" in fields_b
    assert colvar_b.shape == colvar_o.shape == (steps + 1, len(fields_b))
    q6 = colvar_b[:, fields_b.index("q6_vmean")]
    assert np.all(np.abs(q6 - 0.3) > 0.05)  # the restraint pulls: Q6 forces are not zero
    np.testing.assert_allclose(colvar_o, colvar_b, rtol=1e-8, atol=1e-12)
    scale = np.abs(out_b["f"]).max()
    np.testing.assert_allclose(out_o["f"], out_b["f"], rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(out_o["x"], out_b["x"], rtol=0, atol=1e-10)
    assert float(out_o["bias"]) == pytest.approx(float(out_b["bias"]), rel=1e-8)
