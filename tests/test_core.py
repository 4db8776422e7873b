"""The C++ core (through its pybind11 bindings) against independent Python computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chain_helpers import ORTHORHOMBIC, TRICLINIC, brute_force_pairs, eager_evaluate, random_frame
from latentcv.cv_models.native import core as native
from latentcv.export import deploy
from latentcv.export.deploy import ModelCard, save_deployable
from tests.gradcheck import check_gradient


@pytest.fixture(scope="module")
def models(coordination_model):
    return {
        "mono64": coordination_model(atoms_per_molecule=1, cutoff=1.3),
        "dimer64": coordination_model(atoms_per_molecule=2, cutoff=1.5),
        "dimer32": coordination_model(atoms_per_molecule=2, cutoff=1.5, dtype="float32"),
    }


def _canonical(index, shift):
    return sorted(zip(index[0].tolist(), index[1].tolist(), map(tuple, np.round(shift).astype(int).tolist())))


@pytest.mark.parametrize("cell", [ORTHORHOMBIC, TRICLINIC], ids=["ortho", "triclinic"])
@pytest.mark.parametrize("cutoff", [0.9, 2.2])  # 2.2 > half the box: several images
def test_pair_list_matches_brute_force(cell, cutoff):
    centers = random_frame(40, cell, seed=3)
    index, shift = native.build_pair_list(centers, cell, cutoff)
    ref_index, ref_shift = brute_force_pairs(centers, cell, cutoff)
    assert index.shape[1] == ref_index.shape[1] > 0
    assert _canonical(index, shift) == _canonical(ref_index, ref_shift)


def test_pair_list_is_linear_in_size():
    """Pairs per molecule stay constant as the system grows at fixed density (cell list, not N²)."""
    rng = np.random.default_rng(0)
    counts = []
    for n_side in (4, 8):
        cell = np.eye(3) * 2.0 * n_side
        centers = rng.uniform(0, 2.0 * n_side, (n_side**3, 3))
        index, _ = native.build_pair_list(centers, cell, 1.5)
        counts.append(index.shape[1] / n_side**3)
    assert abs(counts[0] - counts[1]) / counts[1] < 0.35


@pytest.mark.parametrize("name", ["mono64", "dimer64", "dimer32"])
@pytest.mark.parametrize("cell", [ORTHORHOMBIC, TRICLINIC], ids=["ortho", "triclinic"])
def test_core_matches_python_eager(models, name, cell):
    positions = random_frame(36, cell, seed=11)
    ref_v, ref_gp, ref_gc = eager_evaluate(models[name], positions, cell)
    model = native.Model(str(models[name]))
    v, gp, gc = model.evaluate(positions, cell)
    tol = 1e-12 if name.endswith("64") else 1e-5
    np.testing.assert_allclose(v, ref_v, rtol=tol, atol=tol)
    np.testing.assert_allclose(gp, ref_gp, rtol=tol, atol=tol)
    np.testing.assert_allclose(gc, ref_gc, rtol=tol, atol=tol)
    assert model.output_names == ["mean", "meansq"]


@pytest.mark.parametrize("cell", [ORTHORHOMBIC, TRICLINIC], ids=["ortho", "triclinic"])
def test_core_gradients_match_finite_differences(models, cell):
    model = native.Model(str(models["dimer64"]), skin=0.0)
    positions = random_frame(24, cell, seed=5)
    _, gp, gc = model.evaluate(positions, cell)
    check_gradient(
        lambda p, c: model.evaluate(p, c, gradients=False)[0],
        (positions, cell),
        (gp, gc),
        eps=1e-6,
        entries=([(0, 0), (7, 1), (13, 2)], [(0, 0), (1, 0), (2, 1), (2, 2)]),
        rtol=1e-6,
        atol=1e-8,
    )


def test_verlet_list_reuse_is_exact(models):
    """Along a trajectory the list is rebuilt rarely, and values equal a fresh evaluation."""
    cell = TRICLINIC
    reused = native.Model(str(models["dimer64"]), skin=0.3)
    rng = np.random.default_rng(2)
    positions = random_frame(48, cell, seed=8)
    for _ in range(20):
        positions = positions + rng.normal(scale=0.01, size=positions.shape)
        v, gp, _ = reused.evaluate(positions, cell)
        fresh = native.Model(str(models["dimer64"]), skin=0.0, warmup=False)
        v0, gp0, _ = fresh.evaluate(positions, cell)
        np.testing.assert_allclose(v, v0, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gp, gp0, rtol=1e-12, atol=1e-12)
    assert 1 <= reused.neighbor_list_rebuilds < 10


def test_atoms_wrapped_across_the_box_give_the_same_cv(models):
    cell = TRICLINIC
    model = native.Model(str(models["dimer64"]))
    positions = random_frame(30, cell, seed=4)
    shifts = np.random.default_rng(1).integers(-2, 3, size=(30, 3)) @ cell
    v, gp, gc = model.evaluate(positions, cell)
    v2, gp2, gc2 = model.evaluate(positions + shifts, cell)
    np.testing.assert_allclose(v2, v, rtol=1e-12)
    np.testing.assert_allclose(gp2, gp, rtol=1e-10, atol=1e-12)


def test_bad_inputs_raise_errors_that_say_what_to_do(models, tmp_path):
    with pytest.raises(RuntimeError, match="not found.*latentcv export"):
        native.Model(str(tmp_path / "missing.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    with pytest.raises(RuntimeError, match="not a TorchScript model"):
        native.Model(str(junk))

    class Bare(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    bare = tmp_path / "bare.pt"
    torch.jit.script(Bare()).save(str(bare))
    with pytest.raises(RuntimeError, match="no metadata"):
        native.Model(str(bare))
    with pytest.raises(RuntimeError, match="DEVICE=cuda.*DEVICE=cpu"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present: the no-CUDA error cannot be provoked")
        native.Model(str(models["dimer64"]), device="cuda")
    model = native.Model(str(models["dimer64"]))
    with pytest.raises(RuntimeError, match="whole molecules of 2 atoms"):
        model.evaluate(np.zeros((5, 3)), ORTHORHOMBIC)
    nan = random_frame(6, ORTHORHOMBIC)
    nan[3, 1] = np.nan
    with pytest.raises(RuntimeError, match="non-finite position"):
        model.evaluate(nan, ORTHORHOMBIC)


def test_read_model_info_matches_model_without_building_it(models, tmp_path):
    """read_model_info: Model's metadata and fields, and Model's errors, without building a model."""
    for name in ("mono64", "dimer32"):
        path = str(models[name])
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            info = native.read_model_info(path)
            assert torch.get_num_threads() == 2  # torch's thread pool untouched
        finally:
            torch.set_num_threads(threads)
        model = native.Model(path, warmup=False)
        assert info.metadata == model.metadata
        for field in ("output_names", "length_unit", "dtype", "cutoff", "atoms_per_molecule"):
            assert getattr(info, field) == getattr(model, field), field
        assert info.species == [int(s) for s in model.metadata.get("species", "").split(",") if s.strip()]
        assert info.name == model.metadata["name"] and str(info.contract_version) == model.metadata["contract_version"]
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    for bad, expected in ((tmp_path / "missing.pt", "not found.*latentcv export"), (junk, "not a TorchScript model")):
        with pytest.raises(RuntimeError, match=expected) as from_model:
            native.Model(str(bad))
        with pytest.raises(RuntimeError, match=expected) as from_info:
            native.read_model_info(str(bad))
        assert type(from_info.value) is type(from_model.value) and str(from_info.value) == str(from_model.value)


def test_future_contract_version_is_refused(tmp_path, monkeypatch):
    from latentcv.export.analytic import CoordinationCV, coordination_card

    card = coordination_card(1, 1.0, "lj", "float64")
    path = save_deployable(CoordinationCV(1, 1.0).eval(), card, tmp_path / "m.pt")
    module = torch.jit.load(str(path))
    assert module.metadata()["contract_version"] == "2"
    assert "ops_version" not in module.metadata()  # core torch ops only
    native.Model(str(path), warmup=False)
    for version, accepted in (("1", True), ("3", True), ("4", False), ("0", False)):
        monkeypatch.setattr(deploy, "CONTRACT_VERSION", version)
        other = save_deployable(CoordinationCV(1, 1.0).eval(), card, tmp_path / f"v{version}.pt")
        if accepted:
            native.Model(str(other), warmup=False)
        else:
            with pytest.raises(RuntimeError, match=f"contract version '{version}'.*reads versions 1 to 3"):
                native.Model(str(other), warmup=False)
    card_bad = ModelCard(**{**card.__dict__, "length_unit": "furlong"})
    with pytest.raises(ValueError, match="length_unit"):
        save_deployable(CoordinationCV(1, 1.0).eval(), card_bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="training mode"):
        save_deployable(CoordinationCV(1, 1.0).train(), card, tmp_path / "train.pt")


def test_vector_jacobian_equals_weighted_gradients(models):
    """The MD-step path (one backward pass) gives Σ_k w_k ∂s_k/∂(r, H) of the full path."""
    cell = TRICLINIC
    model = native.Model(str(models["dimer64"]))
    positions = random_frame(30, cell, seed=9)
    v, gp, gc = model.evaluate(positions, cell)
    v2 = model.evaluate_deferred(positions, cell)
    np.testing.assert_allclose(v2, v, rtol=1e-14)
    w = np.array([0.7, -1.3])
    vp, vc = model.vector_jacobian(w)
    np.testing.assert_allclose(vp, np.tensordot(w, gp, axes=1), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(vc, np.tensordot(w, gc, axes=1), rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="without a preceding"):
        model.vector_jacobian(w)  # the graph is released after one use


def test_atom_order_and_masses_are_checked(tmp_path):
    """Atoms not listed molecule by molecule, or masses off the species pattern, are refused."""
    from latentcv.export.analytic import CoordinationCV, coordination_card

    card = coordination_card(2, 1.5, "lj", "float64")
    card.species = [0, 1]
    card.extra = {"molecule_extent": "0.5", "species_masses": "1.0,2.0"}
    path = save_deployable(CoordinationCV(2, 1.5).eval(), card, tmp_path / "m.pt")
    model = native.Model(str(path))
    rng = np.random.default_rng(0)
    cell = ORTHORHOMBIC
    first = rng.uniform(0, 3, (10, 3))
    dimers = np.stack([first, first + rng.normal(scale=0.1, size=(10, 3))], axis=1).reshape(20, 3)
    model.evaluate(dimers, cell)  # well-formed
    shuffled = dimers[rng.permutation(20)]
    fresh = native.Model(str(path))
    with pytest.raises(RuntimeError, match="list ATOMS molecule by molecule|molecule by molecule"):
        fresh.evaluate(shuffled, cell)
    model.check_masses([1.0, 2.0] * 10)
    with pytest.raises(RuntimeError, match="atom 2 .*mass 1.*species 1 of mass 2"):
        model.check_masses([1.0, 1.0] * 10)


def _one_output_card(name: str):
    from latentcv.export.analytic import coordination_card

    card = coordination_card(1, 1.0, "lj", "float64")
    card.name, card.output_names = name, ["s"]
    return card


class _KinkedCV(torch.nn.Module):
    """Finite value (0), NaN gradient: sqrt at 0 of a quantity that is 0 everywhere."""

    def forward(
        self, positions: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor, edge_shift: torch.Tensor
    ) -> torch.Tensor:
        d = positions[0] - positions[0].detach()
        return torch.sqrt((d * d).sum()).view(1)

    @torch.jit.export
    def molecule_centers(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return positions


class _FailsOnLargeInputs(torch.nn.Module):
    """Loads and warms up (27 molecules), then raises inside TorchScript on 100+ atoms."""

    def forward(
        self, positions: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor, edge_shift: torch.Tensor
    ) -> torch.Tensor:
        if positions.shape[0] >= 100:
            raise RuntimeError("shape not supported by this model")
        return positions.sum().view(1)

    @torch.jit.export
    def molecule_centers(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return positions


def test_options_out_of_range_are_refused(models):
    for threads in (-2, 100000):
        with pytest.raises(RuntimeError, match=f"THREADS={threads} is out of range"):
            native.Model(str(models["dimer64"]), threads=threads, warmup=False)
    with pytest.raises(RuntimeError, match="SKIN=1000000.* is out of range: use 0 to"):
        native.Model(str(models["dimer64"]), skin=1e6, warmup=False)


def test_box_narrower_than_the_cutoff_is_refused(models):
    model = native.Model(str(models["mono64"]), warmup=False)
    cutoff = float(model.metadata["cutoff"])
    cell = np.diag([0.2 * cutoff, 3 * cutoff, 3 * cutoff])
    with pytest.raises(RuntimeError, match="wide along lattice vector a, less than the model cutoff"):
        model.evaluate(random_frame(10, cell, seed=2), cell)


def test_sparse_box_memory_is_bounded(models):
    """10 molecules in a box 2000 cutoffs wide: the cell list has O(M) bins, not 10^9."""
    import resource

    model = native.Model(str(models["mono64"]), warmup=False)
    cell = np.eye(3) * 2000.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    values, _, _ = model.evaluate(random_frame(10, cell, seed=4), cell)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert np.isfinite(values).all()
    assert grown_mb < 200, f"peak memory grew by {grown_mb:.0f} MB"
    index, _ = native.build_pair_list(random_frame(10, cell, seed=4), cell, 1.5)
    assert index.shape[1] == 0


def test_non_finite_gradient_is_refused(tmp_path):
    path = save_deployable(_KinkedCV().eval(), _one_output_card("kinked"), tmp_path / "kinked.pt")
    model = native.Model(str(path), warmup=False)
    cell = np.eye(3) * 4.0
    positions = random_frame(8, cell, seed=1)
    values, _, _ = model.evaluate(positions, cell, gradients=False)
    assert values[0] == 0.0
    with pytest.raises(RuntimeError, match="gradient of the model .* is not finite"):
        model.evaluate(positions, cell)
    model.evaluate_deferred(positions, cell)
    with pytest.raises(RuntimeError, match="gradient of the model .* is not finite.*no forces were applied"):
        model.vector_jacobian(np.array([1.0]))


def test_error_at_evaluation_names_the_model_and_what_to_check(tmp_path):
    path = save_deployable(_FailsOnLargeInputs().eval(), _one_output_card("fails"), tmp_path / "fails.pt")
    model = native.Model(str(path))  # the warm-up (27 molecules) passes
    cell = np.eye(3) * 10.0
    with pytest.raises(RuntimeError, match="failed while computing the CV.*shape not supported.*latentcv eval"):
        model.evaluate(random_frame(120, cell, seed=1), cell)


class _UsesOps(_FailsOnLargeInputs):
    """A model holding latentcv's operators (so its file records ops_version)."""

    def __init__(self) -> None:
        super().__init__()
        from latentcv.cv_models.layers import FusedKernels

        self.kernels = FusedKernels()


def test_older_operator_versions_load_newer_are_refused(tmp_path, monkeypatch):
    from latentcv.cv_models.native.ops import OPS_VERSION

    ok = save_deployable(_UsesOps().eval(), _one_output_card("ops"), tmp_path / "ok.pt")
    assert torch.jit.load(str(ok)).metadata()["ops_version"] == str(OPS_VERSION)
    native.Model(str(ok), warmup=False)
    monkeypatch.setattr(deploy, "OPS_VERSION", OPS_VERSION + 1)
    newer = save_deployable(_UsesOps().eval(), _one_output_card("ops"), tmp_path / "newer.pt")
    with pytest.raises(RuntimeError, match=f"needs latentcv operators of version '{OPS_VERSION + 1}'.*make build"):
        native.Model(str(newer), warmup=False)
    monkeypatch.setattr(deploy, "OPS_VERSION", 2)  # a file exported by an older release (ops version 2)
    older = save_deployable(_UsesOps().eval(), _one_output_card("ops"), tmp_path / "older.pt")
    assert torch.jit.load(str(older)).metadata()["ops_version"] == "2"
    native.Model(str(older), warmup=False)  # still loads: operators keep their schemas across versions
