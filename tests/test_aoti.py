"""The AOTInductor model path (``latentcv export --format aoti``, export/aoti.py,
cpp/latentcv/aoti_package.*): one tiny model compiled once per session (~1 min on 2 cores),
read by the C++ core, equal to the TorchScript file of the same checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latentcv.cv_models.native import core as native


@pytest.fixture(scope="session")
def aoti_model(tiny_models, tmp_path_factory) -> Path:
    """The tiny LJ model as a package; ``export_checkpoint`` ran every self-check on it
    (package = eager = C++ core, C++ gradients = finite differences) before writing it."""
    from latentcv.export.from_checkpoint import export_checkpoint

    out = tmp_path_factory.mktemp("aoti") / "model.pt2"
    return export_checkpoint(tiny_models.checkpoint(1), out, model_format="aoti", log=lambda _: None)


def _frame(n: int, seed: int):
    rng = np.random.default_rng(seed)
    side = (n / 0.9) ** (1 / 3)
    cell = np.array([[side, 0, 0], [0.2, side, 0], [0.1, -0.3, side]])
    return rng.uniform(0, 1, (n, 3)) @ cell, cell


def test_package_equals_torchscript(aoti_model, tiny_models):
    """Values, every gradient and the MD-step path (evaluate_deferred + vector_jacobian) of
    the package equal the TorchScript file's to 1e-10 (float64), at sizes it was not traced at."""
    package = native.Model(str(aoti_model), threads=1)
    script = native.Model(str(tiny_models.exported(1)), threads=1)
    assert package.metadata["contract_version"] == "3" and list(package.output_names) == list(script.output_names)
    for n, seed in ((32, 0), (150, 1)):
        pos, cell = _frame(n, seed)
        for a, b in zip(package.evaluate(pos, cell), script.evaluate(pos, cell)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())
        w = np.linspace(-1.0, 2.0, len(package.output_names))
        np.testing.assert_allclose(
            package.evaluate_deferred(pos, cell), script.evaluate_deferred(pos, cell), rtol=1e-10
        )
        for a, b in zip(package.vector_jacobian(list(w)), script.vector_jacobian(list(w))):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


def test_package_metadata_read_like_torchscript(aoti_model, tiny_models):
    info, ref = native.read_model_info(str(aoti_model)), native.read_model_info(str(tiny_models.exported(1)))
    assert info.contract_version == 3 and ref.contract_version == 2
    assert (info.cutoff, info.length_unit, list(info.output_names)) == (
        ref.cutoff,
        ref.length_unit,
        list(ref.output_names),
    )
    assert "ops_version" not in info.metadata  # the package calls core torch only


def test_format_and_suffix_must_agree(tiny_models, tmp_path):
    from latentcv.export.from_checkpoint import export_checkpoint

    with pytest.raises(ValueError, match=r"must end in \.pt2"):
        export_checkpoint(tiny_models.checkpoint(1), tmp_path / "m.pt", model_format="aoti", log=lambda _: None)
    with pytest.raises(ValueError, match=r"must end in \.pt \("):
        export_checkpoint(tiny_models.checkpoint(1), tmp_path / "m.pt2", log=lambda _: None)
    assert not list(tmp_path.iterdir())
