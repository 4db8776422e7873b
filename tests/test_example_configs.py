"""examples/lj/train_small.toml is the demo's training config with a cheaper encoder only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from latentcv.cv_models.config import load_config

LJ = Path(__file__).resolve().parents[1] / "examples" / "lj"
SMALL_MODEL = {"moment_channels": 1, "stage2_layers": 0}


def test_small_preset_differs_from_the_demo_config_only_in_its_encoder() -> None:
    """Same data, split, labels and training; [model] differs in moment_channels and
    stage2_layers (docs/performance.md, "Cost against quality"); output_dir apart."""
    demo, small = load_config(LJ / "train.toml"), load_config(LJ / "train_small.toml")
    assert small.data == demo.data
    assert dataclasses.replace(small.model, **{k: getattr(demo.model, k) for k in SMALL_MODEL}) == demo.model
    assert {k: getattr(small.model, k) for k in SMALL_MODEL} == SMALL_MODEL
    assert dataclasses.replace(small.training, output_dir=demo.training.output_dir) == demo.training
