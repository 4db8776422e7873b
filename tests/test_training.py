"""Training: config validation, loss decreases, resume == uninterrupted, outputs."""

import json

import numpy as np
import pytest
import torch

from cv_models.config import Config, ConfigError, load_config
from cv_models.training import load_checkpoint, load_encoder, train, train_from_config
from export_helpers import tiny_config

torch.set_num_threads(1)

def write(tmp_path, epochs, out="run", name="cfg.toml"):
    p = tmp_path / name
    p.write_text(tiny_config(2, epochs, out))
    return p


def test_config_validation(tmp_path):
    cfg = load_config(write(tmp_path, 3))
    assert cfg.model.hidden == 8 and cfg.training.epochs == 3 and cfg.data.synthetic["atoms_per_molecule"] == 2
    bad = {
        '[model]\ncutoff = 1.0\nr_on = 1.5\n': "r_on",
        '[model]\nstage1_layer = "gcn"\n': "stage1_layer",
        '[model]\nhiden = 3\n': "unknown key",
        '[training]\nepochs = "ten"\n': "epochs",
        '[extra]\na = 1\n': "top-level",
    }
    for text, msg in bad.items():
        p = tmp_path / "bad.toml"
        p.write_text('[data]\nsynthetic = { n_cells = 2 }\n' + text)
        with pytest.raises(ConfigError, match=msg):
            load_config(p)
    p = tmp_path / "nodata.json"
    p.write_text(json.dumps({"model": {}}))
    with pytest.raises(ConfigError, match="exactly one"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_training_lowers_loss_and_writes_outputs(tmp_path):
    path = train_from_config(str(write(tmp_path, 6)))
    out = tmp_path / "run"
    for f in ("checkpoint.pt", "checkpoint_last.pt", "checkpoint_best.pt", "metrics.csv", "metrics.json",
              "latent.png", "summary.json"):
        assert (out / f).exists(), f
    hist = json.loads((out / "metrics.json").read_text())
    assert hist[-1]["train_total"] < hist[0]["train_total"]
    ck = load_checkpoint(path)
    assert set(ck["centroids"]) == {"crystal", "melt"}
    enc = load_encoder(path)
    assert not enc.training and float(enc.has_centroids) == 1.0
    torch.testing.assert_close(enc.crystal_centroid, torch.tensor(ck["centroids"]["crystal"], dtype=torch.float64))
    torch.jit.script(enc)
    assert enc.output_names() == ["z0", "z1", "n_crystal"]


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full = train_from_config(str(write(tmp_path, 4, out="full", name="a.toml")))
    write(tmp_path, 2, out="part", name="b.toml")
    train_from_config(str(tmp_path / "b.toml"))
    resumed = train_from_config(str(write(tmp_path, 4, out="part", name="b.toml")))
    a = load_checkpoint(full)
    b = load_checkpoint(resumed)
    assert a["train_state"]["epoch"] == b["train_state"]["epoch"] == 4
    for k, v in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][k], v, atol=0, rtol=0)
    ha = [r["train_total"] for r in a["train_state"]["history"]]
    hb = [r["train_total"] for r in b["train_state"]["history"]]
    assert ha == hb


def test_early_stopping(tmp_path):
    cfg = load_config(write(tmp_path, 50), {"training": {"patience": 1, "min_delta": 1e9}})
    path = train(cfg)
    assert load_checkpoint(path)["train_state"]["epoch"] == 2
