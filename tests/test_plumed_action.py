"""The PLUMED action LATENT_CV, run by the bundled `plumed driver` (a separate process)."""

from __future__ import annotations

import numpy as np
import pytest

from chain_helpers import ORTHORHOMBIC, TRICLINIC, random_frame, run_plumed_driver
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.native import paths
from latentcv.cv_models.native import core as native

N_ATOMS = 24


@pytest.fixture(scope="module")
def nm_model(coordination_model):
    return coordination_model(atoms_per_molecule=2, cutoff=1.5, length_unit="nm")


def _frames(cell, scale=1.0):
    return [(random_frame(N_ATOMS, cell, seed=s) * scale, cell * scale) for s in (1, 2)]


@pytest.mark.parametrize("cell", [ORTHORHOMBIC, TRICLINIC], ids=["ortho", "triclinic"])
def test_driver_values_and_derivatives_match_core(tmp_path, nm_model, cell):
    dat = (
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS} FULL_DERIVATIVES\n"
        "PRINT ARG=cv.* FILE=COLVAR FMT=%.14e\n"
        "DUMPDERIVATIVES ARG=cv.mean FILE=DERIV FMT=%.14e\n"
    )
    frames = _frames(cell)
    proc = run_plumed_driver(tmp_path, dat, frames, ["--length-units", "nm"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    fields, colvar = read_plumed_table(tmp_path / "COLVAR")
    assert fields == ["time", "cv.mean", "cv.meansq"]
    _, deriv = read_plumed_table(tmp_path / "DERIV")
    deriv = deriv.reshape(len(frames), 3 * N_ATOMS + 9, -1)
    model = native.Model(str(nm_model))
    for f, (positions, box) in enumerate(frames):
        v, gp, gc = model.evaluate(positions, box)
        np.testing.assert_allclose(colvar[f, 1:], v, rtol=1e-12)
        np.testing.assert_allclose(deriv[f, : 3 * N_ATOMS, 2], gp[0].reshape(-1), rtol=1e-10, atol=1e-12)
        # box derivative = -(Σ r ⊗ ∂s/∂r + Hᵀ ∂s/∂H)
        virial = -(positions.T @ gp[0] + box.T @ gc[0])
        np.testing.assert_allclose(deriv[f, 3 * N_ATOMS :, 2], virial.reshape(-1), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", [ORTHORHOMBIC, TRICLINIC], ids=["ortho", "triclinic"])
def test_derivatives_match_plumed_numerical_derivatives(tmp_path, nm_model, cell):
    dat = (
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS} FULL_DERIVATIVES\n"
        f"num: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS} NUMERICAL_DERIVATIVES\n"
        "DUMPDERIVATIVES ARG=cv.mean,num.mean,cv.meansq,num.meansq FILE=DERIV FMT=%.14e\n"
    )
    proc = run_plumed_driver(tmp_path, dat, _frames(cell), ["--length-units", "nm"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _, d = read_plumed_table(tmp_path / "DERIV")
    assert d.shape[0] == 2 * (3 * N_ATOMS + 9)
    scale = np.abs(d[:, 2:]).max()
    np.testing.assert_allclose(d[:, 2], d[:, 3], atol=2e-6 * scale)  # atoms and box, mean
    np.testing.assert_allclose(d[:, 4], d[:, 5], atol=2e-6 * scale)  # meansq
    assert np.abs(d[-9:, 2]).max() > 1e-3  # the box derivatives are not trivially zero


def test_length_unit_conversion(tmp_path, nm_model):
    """The same physical frame given in Å to PLUMED gives the same CV as in nm."""
    frames_nm = _frames(TRICLINIC)
    frames_a = [(p * 10.0, c * 10.0) for p, c in frames_nm]
    dat = (
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS}\n"
        "PRINT ARG=cv.* FILE=COLVAR FMT=%.14e\n"
    )
    (tmp_path / "nm").mkdir()
    (tmp_path / "A").mkdir()
    p1 = run_plumed_driver(tmp_path / "nm", dat, frames_nm, ["--length-units", "nm"])
    p2 = run_plumed_driver(
        tmp_path / "A", dat.replace("LOAD", "UNITS LENGTH=A\nLOAD"), frames_a, ["--length-units", "A"]
    )
    assert p1.returncode == 0 and p2.returncode == 0, p2.stdout[-2000:]
    _, a = read_plumed_table(tmp_path / "nm" / "COLVAR")
    _, b = read_plumed_table(tmp_path / "A" / "COLVAR")
    np.testing.assert_allclose(a[:, 1:], b[:, 1:], rtol=1e-10)


def _error_of(tmp_path, line: str, frames=None, extra=None) -> str:
    dat = f"LOAD FILE={paths.plumed_plugin_path()}\n{line}\nPRINT ARG=cv.* FILE=COLVAR\n"
    # masses and charges for the driver: all 1 (a 16 is expected by the "masses" case)
    (tmp_path / "mc").write_text("#! FIELDS index mass charge\n" + "".join(f"{i} 1.0 0.0\n" for i in range(N_ATOMS)))
    extra = (extra or ["--length-units", "nm"]) + ["--mc", "mc"]
    proc = run_plumed_driver(tmp_path, dat, frames or _frames(ORTHORHOMBIC), extra)
    assert proc.returncode != 0
    assert "Segmentation" not in proc.stderr
    return proc.stdout + proc.stderr


def test_bad_input_errors(tmp_path, nm_model, coordination_model):
    import torch

    cases = {
        "missing": (f"cv: LATENT_CV MODEL={tmp_path}/nope.pt ATOMS=1-{N_ATOMS}", "not found"),
        "atoms": (f"cv: LATENT_CV MODEL={nm_model} ATOMS=1-23", "whole molecules of 2 atoms"),
        "units": (f"UNITS NATURAL\ncv: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS}", "natural units"),
        "device": (f"cv: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS} DEVICE=cuda", "DEVICE=cpu"),
    }
    (tmp_path / "junk.pt").write_text("junk")
    cases["junk"] = (f"cv: LATENT_CV MODEL={tmp_path}/junk.pt ATOMS=1-{N_ATOMS}", "not a TorchScript model")
    lj = coordination_model(atoms_per_molecule=2, cutoff=1.5, length_unit="lj")
    cases["lj_in_nm"] = (f"cv: LATENT_CV MODEL={lj} ATOMS=1-{N_ATOMS}", "reduced \\(lj\\) length units")

    class Bare(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    torch.jit.script(Bare()).save(str(tmp_path / "bare.pt"))
    cases["no_metadata"] = (f"cv: LATENT_CV MODEL={tmp_path}/bare.pt ATOMS=1-{N_ATOMS}", "no metadata() method")
    from latentcv.export.analytic import CoordinationCV, coordination_card
    from latentcv.export.deploy import save_deployable

    card = coordination_card(2, 1.5, "nm", "float64")
    card.species, card.extra = [0, 1], {"species_masses": "1.0,16.0"}
    heavy = save_deployable(CoordinationCV(2, 1.5).eval(), card, tmp_path / "heavy.pt")
    cases["masses"] = (f"cv: LATENT_CV MODEL={heavy} ATOMS=1-{N_ATOMS}", "expects species 1 of mass 16")
    base = f"cv: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS}"
    cases["threads_huge"] = (f"{base} THREADS=10000", "THREADS=10000 is out of range")
    cases["threads_negative"] = (f"{base} THREADS=-3", "THREADS=-3 is negative")
    cases["skin_huge"] = (f"{base} SKIN=1e6", "is out of range: use 0 to")
    cases["skin_negative"] = (f"{base} SKIN=-0.5", "is negative")
    cases["duplicates"] = (f"cv: LATENT_CV MODEL={nm_model} ATOMS=1-{N_ATOMS},1-2", "lists atom 1 more than once")
    tiny_box = [(random_frame(N_ATOMS, ORTHORHOMBIC, seed=1) * 0.1, ORTHORHOMBIC * 0.1)]
    cases["tiny_box"] = (base, "less than the model cutoff", tiny_box)
    for name, (line, expected, *frames) in cases.items():
        if name == "device" and torch.cuda.is_available():
            continue
        d = tmp_path / name
        d.mkdir()
        out = _error_of(d, line, frames[0] if frames else None)
        assert any(s in out for s in [expected.replace("\\", "")]), f"{name}: {out[-1500:]}"


def test_natural_units_model(tmp_path, coordination_model):
    lj = coordination_model(atoms_per_molecule=1, cutoff=1.4, length_unit="lj")
    dat = (
        "UNITS NATURAL\n"
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={lj} ATOMS=1-{N_ATOMS}\n"
        "PRINT ARG=cv.* FILE=COLVAR FMT=%.14e\n"
    )
    frames = _frames(ORTHORHOMBIC)
    proc = run_plumed_driver(tmp_path, dat, frames)
    assert proc.returncode == 0, proc.stdout[-3000:]
    _, colvar = read_plumed_table(tmp_path / "COLVAR")
    v, _, _ = native.Model(str(lj)).evaluate(*frames[0])
    np.testing.assert_allclose(colvar[0, 1:], v, rtol=1e-12)
