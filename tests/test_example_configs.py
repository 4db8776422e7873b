"""The small presets (examples/lj/train_small.toml, examples/dimers/train_small.toml) are
their system's training config with a cheaper encoder only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from latentcv.cv_models.config import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL_MODEL = {
    "lj": {"moment_channels": 1, "stage2_layers": 0},
    "dimers": {"stage1_layers": 0, "moment_channels": 1, "stage2_layers": 0},
}


@pytest.mark.parametrize("system", sorted(SMALL_MODEL))
def test_small_preset_differs_from_the_system_config_only_in_its_encoder(system: str) -> None:
    """Same data, split, labels and training; [model] differs in the preset's keys only
    (docs/performance.md, "Cost against quality" and "The molecular path"); output_dir apart."""
    full, small = load_config(EXAMPLES / system / "train.toml"), load_config(EXAMPLES / system / "train_small.toml")
    keys = SMALL_MODEL[system]
    assert small.data == full.data
    assert dataclasses.replace(small.model, **{k: getattr(full.model, k) for k in keys}) == full.model
    assert {k: getattr(small.model, k) for k in keys} == keys
    assert all(getattr(full.model, k) != v for k, v in keys.items())  # each key makes it smaller
    assert dataclasses.replace(small.training, output_dir=full.training.output_dir) == full.training
