"""The bias block of `latentcv plumed-input`: the budget rule (export/bias_settings.py) and
OPES_METAD as an alternative to WT-METAD."""

from __future__ import annotations

import math

import pytest

from latentcv.cv_models.app import cli
from latentcv.export.bias_settings import crossing_distance, steps_to_cross
from tests.export_helpers import save_model_with_hints


def test_the_estimate_is_the_hill_volume_rule():
    """Without well-tempering (gamma -> infinity) the steps are the bias volume ½ ΔF D over
    one hill's volume H σ √(2π), times PACE; well-tempering only adds hills."""
    barrier, distance, sigma, height, pace = 20.0, 100.0, 5.0, 1.0, 200
    by_hand = 0.5 * barrier * distance / (height * sigma * math.sqrt(2 * math.pi)) * pace
    assert steps_to_cross(barrier, distance, sigma, height, pace, 1e9) == pytest.approx(by_hand, rel=1e-6)
    tempered = steps_to_cross(barrier, distance, sigma, height, pace, 10.0)
    # gamma = 10: volume x (1 - 1/10), heights shrink on average by (1 - e^-2) / 2
    assert tempered == pytest.approx(by_hand * 0.9 / ((1 - math.exp(-2.0)) / 2.0), rel=1e-9)
    # proportional to the distance and PACE, inversely to the hill's width and height
    assert steps_to_cross(barrier, 2 * distance, sigma, height, pace, 30) == pytest.approx(
        2 * steps_to_cross(barrier, distance, sigma, height, pace, 30)
    )
    assert steps_to_cross(barrier, distance, 2 * sigma, 2 * height, pace, 30) == pytest.approx(
        steps_to_cross(barrier, distance, sigma, height, pace, 30) / 4
    )


def test_the_distance_to_the_barrier():
    assert crossing_distance("n_nucleus", None, 80.0)[0] == 80.0
    assert crossing_distance("n_crystal", None, None)[0] is None
    assert crossing_distance("proj", 1.0, None)[0] == 0.5
    assert crossing_distance("z0", None, None)[0] is None


@pytest.fixture
def model(tmp_path):
    return save_model_with_hints(tmp_path / "m.pt", sigma_hint=[0.1, 0.1, 0.1, 0.1, 2.0, 1.0], atoms_per_molecule=1)


def _plumed_dat(model, tmp_path, *args) -> str:
    out = tmp_path / "plumed.dat"
    assert cli.main(["plumed-input", str(model), "--natoms", "64", "--temp", "0.6", "--out", str(out), *args]) == 0
    return out.read_text()


def test_hills_that_cannot_reach_the_barrier_in_the_budget_are_flagged(model, tmp_path, capsys):
    text = _plumed_dat(model, tmp_path, "--critical-size", "50", "--budget", "1000")
    assert "# REVIEW BUDGET" in text and "--budget" in capsys.readouterr().err
    text = _plumed_dat(model, tmp_path, "--critical-size", "50", "--budget", "100000000")
    assert "# REVIEW BUDGET" not in text and "#   Estimate: ~" in text
    assert "warning" not in capsys.readouterr().err
    text = _plumed_dat(model, tmp_path)  # a count without the critical size: says what to pass
    assert "Budget check: pass --critical-size" in text


def test_opes_is_offered_with_its_barrier_in_kt(model, tmp_path):
    text = _plumed_dat(model, tmp_path, "--method", "opes", "--barrier", "20")
    opes = next(line for line in text.splitlines() if line.startswith("opes:"))
    assert opes.startswith("opes: OPES_METAD ARG=cv.n_crystal SIGMA=")
    assert "BARRIER=12 " in opes and "FILE=KERNELS" in opes and opes.endswith("STRIDE=5")  # 20 kT at T = 0.6
    assert "PRINT ARG=cv.*,opes.bias" in text and "METAD " not in text.replace("OPES_METAD", "")


@pytest.mark.parametrize(
    "option, message",
    [
        ({"barrier_kt": 0.0}, "--barrier 0.0: must be a finite number > 0"),
        ({"budget": 0}, "--budget 0: must be an integer >= 1"),
        ({"critical_size": -1.0}, "--critical-size -1.0: must be a finite number > 0"),
        ({"method": "abf"}, "--method 'abf': one of metad, opes"),
    ],
)
def test_bias_options_are_checked(model, option, message):
    from latentcv.export.plumed_input import PlumedInputOptions, plumed_input

    with pytest.raises(ValueError) as err:
        plumed_input(model, PlumedInputOptions(atoms="1-64", temp=0.6, **option))
    assert message in str(err.value)


def test_compare_sizes_hills_on_the_settled_melt_and_refuses_a_flat_cv():
    """`latentcv compare`'s SIGMA is scale × the std after the first fifth of the melt run;
    a CV that reads the same in every melt frame (PLUMED's cluster CV on the trimers with
    the close-packed switch did) is refused with the reason, not given SIGMA 0."""
    import numpy as np

    from latentcv.cv_models.app.compare import melt_sigmas

    rng = np.random.default_rng(0)
    moving = np.concatenate([np.full(20, 100.0), rng.normal(5.0, 2.0, 80)])  # the first fifth settles
    flat = np.full(100, 3.0)
    sigma = melt_sigmas(np.stack([moving, moving * 2], axis=1), ("latent", "q6"), 4.0)
    assert sigma["latent"] == pytest.approx(4.0 * moving[20:].std())
    assert sigma["q6"] == pytest.approx(2 * sigma["latent"])
    with pytest.raises(ValueError, match="cluster: it does not move in the unbiased melt.*std 0"):
        melt_sigmas(np.stack([moving, flat], axis=1), ("latent", "cluster"), 4.0)
