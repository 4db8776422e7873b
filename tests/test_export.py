"""``latentcv export``: metadata, C++ = Python on real frames, gradients, refusals, PLUMED."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chain_helpers import run_plumed_driver
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.systems import METAD_DEFAULTS
from latentcv.cv_models.native import core as native
from latentcv.cv_models.native.ops import OPS_VERSION
from latentcv.cv_models.checkpoint import load_checkpoint, load_encoder
from latentcv.export.deploy import ModelCard
from latentcv.export.checks import ExportCheckError, export_model
from latentcv.export.from_checkpoint import export_checkpoint
from latentcv.export.module import LatentCVModule
from latentcv.export.plumed_input import PlumedInputOptions, plumed_input
from export_helpers import held_out_frames, reference_outputs
from tests.gradcheck import check_gradient

torch.set_num_threads(1)

NAMES = ["z0", "z1", "proj", "dcrys", "n_crystal", "n_nucleus"]


@pytest.fixture(scope="module")
def runs(tiny_models):
    """Checkpoints of a tiny LJ (1 atom/molecule) and dimer (2 atoms/molecule) model and
    their exported files in float64 and float32."""
    out = {}
    for system, apm in (("lj", 1), ("dimer", 2)):
        out[system] = {"checkpoint": tiny_models.checkpoint(apm)}
        for dtype in ("float64", "float32"):
            out[system][dtype] = tiny_models.exported(apm, dtype)
            out[system][dtype + "_log"] = tiny_models.logs[out[system][dtype]]
    return out


def _rel(a, b):
    """max over outputs of max|a-b| / max|b| (per output, over frames)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return float((np.abs(a - b).max(0) / np.maximum(np.abs(b).max(0), 1e-12)).max())


def test_metadata_has_every_key(runs):
    meta = dict(native.Model(str(runs["dimer"]["float64"]), warmup=False).metadata)
    for key in (
        "contract_version",
        "name",
        "length_unit",
        "dtype",
        "atoms_per_molecule",
        "species",
        "cutoff",
        "output_names",
        "description",
        "provenance",
        "latent_dim",
        "crystal_centroid",
        "melt_centroid",
        "sigma_hint",
        "sigma_hint_source",
        "r_on",
        "molecule_extent",
        "data_fingerprint",
    ):
        assert key in meta, key
    assert meta["contract_version"] == "2" and meta["length_unit"] == "lj" and meta["dtype"] == "float64"
    assert meta["ops_version"] == str(OPS_VERSION)  # the fused angular moments
    assert meta["atoms_per_molecule"] == "2" and meta["species"] == "0,0"
    assert meta["output_names"] == ",".join(NAMES)
    enc = load_encoder(runs["dimer"]["checkpoint"])
    assert float(meta["cutoff"]) == enc.cutoff
    np.testing.assert_allclose([float(x) for x in meta["crystal_centroid"].split(",")], enc.crystal_centroid.numpy())
    np.testing.assert_allclose([float(x) for x in meta["melt_centroid"].split(",")], enc.melt_centroid.numpy())
    sigma = [float(x) for x in meta["sigma_hint"].split(",")]
    assert len(sigma) == len(NAMES) and all(s > 0 for s in sigma)
    # bond 0.3 sigma in the synthetic dimers, x1.5 margin
    assert 0.3 < float(meta["molecule_extent"]) < 0.6
    prov = json.loads(meta["provenance"])
    assert prov["checkpoint_sha256"].startswith("sha256:") and prov["data_fingerprint"] == meta["data_fingerprint"]
    assert prov["config"]["model"]["hidden"] == 8
    assert {"latentcv", "torch", "numpy", "python"} <= set(prov["versions"])
    f32 = dict(native.Model(str(runs["dimer"]["float32"]), warmup=False).metadata)
    assert f32["dtype"] == "float32" and f32["data_fingerprint"] == meta["data_fingerprint"]
    assert dict(native.Model(str(runs["lj"]["float64"]), warmup=False).metadata)["molecule_extent"] == ""


def test_export_logs_what_it_checks(runs):
    log = "\n".join(runs["dimer"]["float64_log"])
    for phrase in ("scripted vs eager", "C++ core vs eager", "finite differences", "wrote", "SIGMA hints"):
        assert phrase in log, phrase


@pytest.mark.parametrize("system", ["lj", "dimer"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_core_matches_python_on_held_out_frames(runs, system, dtype, tol):
    enc = load_encoder(runs[system]["checkpoint"])
    frames = held_out_frames(runs[system]["checkpoint"])
    assert len(frames) >= 2
    core = native.Model(str(runs[system][dtype]), warmup=False)
    assert core.output_names == NAMES
    got = np.array([core.evaluate(f.positions, f.cell, gradients=False)[0] for f in frames])
    ref = np.array([reference_outputs(enc, f.positions, f.cell) for f in frames])
    # float32 is compared with the float32 eager model (same arithmetic), and loosely with float64
    if dtype == "float32":
        scripted = torch.jit.load(str(runs[system][dtype]))
        from latentcv.export.checks import _eager

        ref32 = np.array([_eager(scripted, f.positions, f.cell, torch.float32, False, enc.cutoff)[0] for f in frames])
        assert _rel(got, ref32) < tol
        assert _rel(got[:, -2:], ref[:, -2:]) < 1e-3  # n_crystal, n_nucleus in float32 vs float64
    else:
        assert _rel(got, ref) < tol
    # the derived CVs are what they say: proj 0/1 at the centroids, dcrys 1/0
    module = LatentCVModule(enc)
    c, m = enc.crystal_centroid.unsqueeze(0), enc.melt_centroid.unsqueeze(0)
    d = module.derived(torch.cat([c, m]), torch.zeros(2, dtype=c.dtype), torch.zeros(2, dtype=c.dtype)).numpy()
    np.testing.assert_allclose(d[:, 2], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(d[:, 3], [0.01, np.sqrt(1.0 + 1e-4)], rtol=1e-12)


@pytest.mark.parametrize("system", ["lj", "dimer"])
def test_core_gradients_match_finite_differences(runs, system):
    frame = held_out_frames(runs[system]["checkpoint"])[0]
    core = native.Model(str(runs[system]["float64"]), skin=0.0, warmup=False)
    pos, cell = frame.positions.copy(), frame.cell.copy()
    v, gp, gc = core.evaluate(pos, cell)
    # per-output gradient scale; proj amplifies z by 1/|c_crys - c_melt|^2, so round-off
    # in the values limits the step from below, and dcrys's curvature near the crystal
    # centroid from above (h = 1e-5: both ~1e-7 relative)
    scale = np.maximum(np.abs(gp).max(axis=(1, 2)), np.abs(gc).max(axis=(1, 2)))
    assert (scale > 0).all()
    check_gradient(
        lambda p, c: core.evaluate(p, c, gradients=False)[0],
        (pos, cell),
        (gp, gc),
        eps=1e-5,
        entries=([(0, 0), (5, 1), (pos.shape[0] - 1, 2)], [(0, 0), (1, 1), (2, 2), (1, 0)]),
        atol=1e-5 * scale,
    )


# ---------------------------------------------------------------------------- refusals
def _card(enc, dtype="float64"):
    return ModelCard(
        name="t",
        length_unit="lj",
        dtype=dtype,
        atoms_per_molecule=enc.atoms_per_molecule,
        cutoff=enc.cutoff,
        output_names=NAMES,
        species=enc.species.tolist(),
    )


def _assert_nothing_written(folder, out, sentinel=None):
    if sentinel is None:
        assert not out.exists()
    else:
        assert out.read_text() == sentinel
    assert not [p for p in folder.iterdir() if "checking" in p.name or p.suffix == ".tmp"]


def test_refuses_training_mode(runs, tmp_path):
    enc = load_encoder(runs["lj"]["checkpoint"])
    module = LatentCVModule(enc).train()
    frames = held_out_frames(runs["lj"]["checkpoint"])
    with pytest.raises(ValueError, match="training mode"):
        export_model(module, _card(enc), tmp_path / "m.pt", frames, log=lambda s: None)
    module.eval()
    module.encoder.stage2[0].train()  # one submodule left in training mode is enough
    with pytest.raises(ValueError, match="training mode"):
        export_model(module, _card(enc), tmp_path / "m.pt", frames, log=lambda s: None)
    _assert_nothing_written(tmp_path, tmp_path / "m.pt")


class _ScriptedDiffers(LatentCVModule):
    """Agrees in eager mode, not once scripted: the check 'scripted vs eager' must catch it."""

    def forward(
        self, positions: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor, edge_shift: torch.Tensor
    ) -> torch.Tensor:
        out = self.outputs(positions, cell, edge_index, edge_shift)
        if torch.jit.is_scripting():
            out = out * (1.0 + 1e-6)
        return out


class _DetachedGradient(LatentCVModule):
    """Values right, gradients wrong (n_crystal detached): finite differences must catch it."""

    def forward(
        self, positions: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor, edge_shift: torch.Tensor
    ) -> torch.Tensor:
        out = self.outputs(positions, cell, edge_index, edge_shift)
        return torch.cat([out[:-2], out[-2:-1].detach(), out[-1:]])


@pytest.mark.parametrize(
    "cls,check", [(_ScriptedDiffers, "scripted vs eager"), (_DetachedGradient, "finite differences")]
)
def test_refuses_a_model_that_fails_a_check(runs, tmp_path, cls, check):
    enc = load_encoder(runs["dimer"]["checkpoint"])
    frames = held_out_frames(runs["dimer"]["checkpoint"])[:2]
    out = tmp_path / "model.pt"
    out.write_text("previous model")  # an existing file must survive a refused export
    with pytest.raises(ExportCheckError, match=check) as info:
        export_model(cls(enc).eval(), _card(enc), out, frames, log=lambda s: None)
    assert "tolerance" in str(info.value) and "max rel" in str(info.value)
    _assert_nothing_written(tmp_path, out, sentinel="previous model")


def test_refuses_checkpoint_without_centroids_and_missing_files(runs, tmp_path):
    ck = load_checkpoint(runs["lj"]["checkpoint"])
    ck["centroids"] = None
    bad = tmp_path / "nocentroids.pt"
    torch.save(ck, str(bad))
    with pytest.raises(ValueError, match="no crystal/melt centroids"):
        export_checkpoint(bad, tmp_path / "m.pt", log=lambda s: None)
    with pytest.raises(FileNotFoundError, match="latentcv train"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "m.pt", log=lambda s: None)
    junk = tmp_path / "junk.pt"
    junk.write_text("junk")
    with pytest.raises(ValueError, match="not a latentcv training checkpoint"):
        export_checkpoint(junk, tmp_path / "m.pt", log=lambda s: None)
    enc = load_encoder(runs["lj"]["checkpoint"])
    enc.has_centroids.fill_(0.0)
    with pytest.raises(ValueError, match="centroids"):
        LatentCVModule(enc)
    assert not (tmp_path / "m.pt").exists()


def test_export_with_explicit_frames(runs, tmp_path):
    from latentcv.cv_models.data.dataset import Dataset

    frames = held_out_frames(runs["dimer"]["checkpoint"])
    Dataset(frames).save(tmp_path / "frames.npz")
    log: list[str] = []
    path = export_checkpoint(
        runs["dimer"]["checkpoint"], tmp_path / "m.pt", check_frames=tmp_path / "frames.npz", log=log.append
    )
    assert path.exists() and any("--frames" in line for line in log)


# ---------------------------------------------------------------------------- PLUMED
N_DRIVER_FRAMES = 2


@pytest.mark.parametrize("system", ["lj", "dimer"])
def test_plumed_input_runs_in_plumed_driver(runs, tmp_path, system):
    model = runs[system]["float64"]
    frames = held_out_frames(runs[system]["checkpoint"])[:N_DRIVER_FRAMES]
    n = frames[0].n_atoms
    text = plumed_input(
        model,
        PlumedInputOptions(atoms=f"1-{n}", cv="proj", temp=0.58, engine="driver", pace=1, stride=1, bias_stride=1),
    )
    assert "UNITS NATURAL" in text and "BIASFACTOR=30" in text and "LOAD FILE=" in text
    sigma = float(dict(native.Model(str(model), warmup=False).metadata)["sigma_hint"].split(",")[2])
    sigma *= 2 * METAD_DEFAULTS.sigma_melt_stds  # the hint is half a melt std
    assert f"SIGMA={sigma:.6g}" in text and f"HEIGHT={METAD_DEFAULTS.height_kt * 0.58:.6g}" in text
    lines = text.splitlines()
    actions = [k for k, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    assert len(actions) >= 4  # UNITS, LOAD, LATENT_CV, METAD, PRINT
    for k in actions:  # every action line is explained, on the line or just above it
        assert "#" in lines[k] or lines[k - 1].startswith("#"), lines[k]
    proc = run_plumed_driver(tmp_path, text, [(f.positions, f.cell) for f in frames])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    fields, data = read_plumed_table(tmp_path / "COLVAR")
    assert fields == ["time"] + [f"cv.{k}" for k in NAMES] + ["metad.bias"]
    core = native.Model(str(model), warmup=False)
    for row, f in zip(data, frames):
        v = core.evaluate(f.positions, f.cell, gradients=False)[0]
        np.testing.assert_allclose(row[1 : 1 + len(NAMES)], v, rtol=0, atol=6e-7)  # PRINT writes %f (6 decimals)
    assert (tmp_path / "HILLS").exists()


def test_plumed_input_opes_runs_in_plumed_driver(runs, tmp_path):
    """--method opes: PLUMED's OPES_METAD on the learned CV runs, biases and writes its kernels."""
    model = runs["lj"]["float64"]
    frames = held_out_frames(runs["lj"]["checkpoint"])[:N_DRIVER_FRAMES]
    n = frames[0].n_atoms
    options = PlumedInputOptions(
        atoms=f"1-{n}", cv="proj", temp=0.58, engine="driver", pace=1, stride=1, bias_stride=1, method="opes"
    )
    text = plumed_input(model, options)
    proc = run_plumed_driver(tmp_path, text, [(f.positions, f.cell) for f in frames])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    fields, data = read_plumed_table(tmp_path / "COLVAR")
    assert fields[-1] == "opes.bias" and len(data) == len(frames)
    # OPES starts from a flat bias of -BARRIER: the default (METAD_DEFAULTS) in kT at T = 0.58, natural units
    np.testing.assert_allclose(data[0, -1], -METAD_DEFAULTS.barrier_kt * 0.58, rtol=1e-6)
    kernels = [ln for ln in (tmp_path / "KERNELS").read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(kernels) >= 1  # PACE=1: a kernel per frame


@pytest.mark.parametrize("system", ["lj", "dimer"])
def test_latent_cv_derivatives_match_plumed_numerical_derivatives(runs, tmp_path, system):
    from latentcv.cv_models.native import paths

    model = runs[system]["float64"]
    frames = held_out_frames(runs[system]["checkpoint"])[:1]
    n = frames[0].n_atoms
    assert n <= 64
    outputs = ("z0", "proj", "n_crystal")
    args = ",".join(f"{a}.{k}" for k in outputs for a in ("cv", "num"))
    dat = (
        "UNITS NATURAL\n"
        f"LOAD FILE={paths.plumed_plugin_path()}\n"
        f"cv: LATENT_CV MODEL={model} ATOMS=1-{n} FULL_DERIVATIVES\n"
        f"num: LATENT_CV MODEL={model} ATOMS=1-{n} NUMERICAL_DERIVATIVES\n"
        f"DUMPDERIVATIVES ARG={args} FILE=DERIV FMT=%.14e\n"
    )
    proc = run_plumed_driver(tmp_path, dat, [(f.positions, f.cell) for f in frames])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _, d = read_plumed_table(tmp_path / "DERIV")
    assert d.shape[0] == 3 * n + 9
    core = native.Model(str(model), warmup=False)
    meta = dict(core.metadata)
    values = dict(zip(core.output_names, core.evaluate(frames[0].positions, frames[0].cell, gradients=False)[0]))
    c = np.array([float(x) for x in meta["crystal_centroid"].split(",")])
    m = np.array([float(x) for x in meta["melt_centroid"].split(",")])
    # PLUMED differentiates one-sided with a step h ~ 1.5e-8: its noise is the round-off
    # of the value (~1e-15 |value|, more for the box's scaled positions) / h ~ 3e-7 |value|; proj = (z - c_melt).axis / |axis|^2
    # carries z's round-off magnified by |z| / |c_crys - c_melt| (large for a barely
    # trained model). Truncation error is ~h |d2s|: negligible.
    latent_norm = float(np.linalg.norm([v for k, v in values.items() if k[0] == "z" and k[1:].isdigit()]))
    amplification = {"proj": max(1.0, np.abs(c).max() / np.linalg.norm(c - m))}
    for k, name in enumerate(outputs):
        col = 2 + 2 * k
        scale = np.abs(d[:, col]).max()
        assert scale > 0
        # a latent component can sit near zero by cancellation while its round-off is that
        # of the whole latent vector (one linear head over the same features): scale by both
        magnitude = max(abs(values[name]), latent_norm if name.startswith("z") else 0.0, 1e-3)
        noise = 3e-7 * magnitude * amplification.get(name, 1.0)
        # a box component moves every atom's (scaled) position at once: the round-off of
        # those n displaced positions adds up, ~sqrt(n) times that of one atom
        atol = 1e-5 * scale + noise * np.r_[np.ones(3 * n), np.full(9, np.sqrt(n))]
        bad = np.abs(d[:, col] - d[:, col + 1]) > atol
        assert not bad.any(), (name, np.flatnonzero(bad), d[bad, col], d[bad, col + 1], atol[bad])
        assert atol.max() < 0.01 * scale, name  # the comparison still tells right from wrong
        assert np.abs(d[-9:, col]).max() > 1e-6 * scale  # the box derivatives are not trivially zero
