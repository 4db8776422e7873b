"""Training: config validation, loss decreases, resume == uninterrupted, outputs."""

import json
import re

import pytest
import torch

from latentcv.cv_models.config import ConfigError, load_config
from latentcv.cv_models.checkpoint import load_checkpoint, load_encoder
from latentcv.cv_models.training import train, train_from_config
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
        "[model]\ncutoff = 1.0\nr_on = 1.5\n": "r_on",
        '[model]\nstage1_layer = "gcn"\n': "stage1_layer",
        "[model]\nhiden = 3\n": "unknown key",
        '[training]\nepochs = "ten"\n': "epochs",
        "[extra]\na = 1\n": "top-level",
    }
    for text, msg in bad.items():
        p = tmp_path / "bad.toml"
        p.write_text("[data]\nsynthetic = { n_cells = 2 }\n" + text)
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
    for f in (
        "checkpoint.pt",
        "checkpoint_last.pt",
        "checkpoint_best.pt",
        "metrics.csv",
        "metrics.json",
        "latent.png",
        "summary.json",
    ):
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


def test_one_table_of_loss_terms(tmp_path):
    """loss_terms, the w_<term> weights, the reported parts and the factors of the
    data-parallel recombination follow one table (cv_models/loss_terms.py): a term or a
    weight added in one place only fails here."""
    import dataclasses

    from latentcv.cv_models.autoencoder import HierarchicalAutoencoder
    from latentcv.cv_models.batching import collate, prepare_samples
    from latentcv.cv_models.config import TrainingConfig
    from latentcv.cv_models.data.sources import load_frames
    from latentcv.cv_models.diagnostics import loss_weights
    from latentcv.cv_models.loss_terms import LOSS_TERMS, REPORTED_TERMS, TERM_NAMES, term_factors
    from latentcv.cv_models.training import resolve_model_config

    cfg = load_config(write(tmp_path, 1))
    weights = {f.name for f in dataclasses.fields(TrainingConfig) if f.name.startswith("w_")}
    assert weights == {t.weight for t in LOSS_TERMS}
    assert list(loss_weights(cfg)) == list(REPORTED_TERMS)
    frames = list(load_frames(cfg))[:4]
    mcfg = resolve_model_config(cfg.model, frames)
    model = HierarchicalAutoencoder(mcfg)
    dtype = torch.float64 if mcfg.dtype == "float64" else torch.float32
    batch = collate(prepare_samples(frames, mcfg.atoms_per_molecule, mcfg.cutoff, dtype), torch.device("cpu"))
    terms, counts, _ = model.loss_terms(batch, 2, torch.Generator().manual_seed(0))
    assert tuple(terms) == TERM_NAMES and tuple(counts) == TERM_NAMES
    total, parts, _ = model.loss(batch, loss_weights(cfg), 2, torch.Generator().manual_seed(0))
    assert list(parts) == [*REPORTED_TERMS, "total"]
    factors = term_factors(loss_weights(cfg), set(terms))
    torch.testing.assert_close(sum(factors[k] * terms[k] for k in TERM_NAMES), total.detach())


# ---------------------------------------------------------------------------- `latentcv train` CLI
def test_cli_train_options_and_set_overrides(tmp_path, capsys):
    from latentcv.cv_models.app.cli import main

    cfg = write(tmp_path, 50)  # the options below must win over the file
    out = tmp_path / "o"
    args = [
        "train",
        str(cfg),
        "--epochs",
        "1",
        "--output-dir",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
        "--set",
        "model.cutoff=1.6",
        "--set",
        "model.r_on=1.3",
        "--set",
        "training.lr=1e-3",
        "--set",
        "model.moment_degrees=[6, 4]",
        "--set",
        "model.stage1_layer=mp",
        "--set",
        "training.epochs=7",
    ]
    assert main(args) == 0
    assert str(out / "checkpoint.pt") in capsys.readouterr().out
    ck = load_checkpoint(out / "checkpoint.pt")
    m, t = ck["model_config"], ck["config"]["training"]
    assert (m["cutoff"], m["r_on"], m["moment_degrees"], m["stage1_layer"]) == (1.6, 1.3, [6, 4], "mp")
    assert (t["lr"], t["epochs"], t["device"], t["progress"]) == (1e-3, 1, "cpu", False)
    assert ck["train_state"]["epoch"] == 1
    # resume (default) keeps the finished epoch; --no-resume trains it again from scratch
    first = ck["train_state"]["history"][0]["time_s"]
    assert main(args) == 0
    assert load_checkpoint(out / "checkpoint.pt")["train_state"]["history"][0]["time_s"] == first
    assert main(args + ["--no-resume"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["train_state"]["history"][0]["time_s"] != first
    capsys.readouterr()
    # every --set goes through the config validation, errors name the key
    for bad, msg in (
        (["--set", "model.cutof=1.6"], "unknown key.*cutof"),
        (["--set", "model.cutoff=abc"], "model.cutoff = 'abc': expected a finite number"),
        (["--set", "model.r_on=2.0"], r"r_on must be in \[0, cutoff"),
        (["--set", "cutoff=1.6"], "SECTION.KEY=VALUE"),
        (["--set", "solver.lr=1"], "unknown section 'solver'"),
        (["--set", "model.species=[0,"], "not a TOML literal"),
    ):
        assert main(["train", str(cfg), "--epochs", "1"] + bad) == 2, bad
        assert re.search(msg, capsys.readouterr().err), msg


def test_cli_train_no_progress_prints_one_line_per_epoch_and_draws_no_bar(tmp_path, capsys):
    """--no-progress: a line per epoch on stdout, no bar on stderr (not the epochs', not
    the 60 frames' ten Wolde labels')."""
    from latentcv.cv_models.app.cli import main

    cfg = write(tmp_path, 50)
    args = [
        "train",
        str(cfg),
        "--epochs",
        "2",
        "--output-dir",
        str(tmp_path / "o"),
        "--no-progress",
        "--set",
        "data.synthetic={atoms_per_molecule = 2, n_cells = 2, frames_per_trajectory = 15, trajectories_per_phase = 2}",
        "--set",
        'data.molecule_labels="ten_wolde"',
    ]
    assert main(args) == 0
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("latentcv train: epoch")]
    assert [line.split(":")[1] for line in lines] == [" epoch 1/2", " epoch 2/2"], out
    assert all("train_total" in line and "val_total" in line for line in lines)
    assert "latentcv train" not in err and "labels" not in err and "it/s" not in err, err


def test_a_run_cut_by_the_epoch_cap_while_accuracy_rises_says_so():
    from latentcv.cv_models.diagnostics import epoch_cap_note

    def state(acc, epochs_done, stopped=False, key="val_molecule_acc"):
        return {
            "epoch": epochs_done,
            "stopped": stopped,
            "history": [{"epoch": k, key: a, "val_frame_acc": 1.0} for k, a in enumerate(acc)],
        }

    rising = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85]
    note = epoch_cap_note(state(rising, 6), 6)
    assert "stopped at the epoch cap (epochs = 6) while val accuracy was still rising: raise [training] epochs" in note
    assert "val_molecule_acc 0.500 -> 0.850" in note
    assert epoch_cap_note(state(rising, 6, key="other"), 6) is None  # per frame: level at 1.0
    assert epoch_cap_note(state([0.9, 0.91, 0.9, 0.9, 0.91, 0.9], 6), 6) is None  # level
    assert epoch_cap_note(state(rising, 6, stopped=True), 6) is None  # early stopping ended it
    assert epoch_cap_note(state(rising, 6), 10) is None  # not at the cap (interrupted)
    assert epoch_cap_note(state([0.5], 1), 1) is None  # one epoch: no trend


def test_cli_train_on_dumps_with_string_labels(tmp_path, capsys):
    """The documented `{ path, data_file, label = "crystal" }` form trains through the CLI."""
    from latentcv.cv_models.app.cli import main
    from latentcv.cv_models.data import write_lammps_data, write_lammps_dump
    from latentcv.cv_models.synthetic import synthetic_dataset

    frames = synthetic_dataset(atoms_per_molecule=2, n_cells=2, frames_per_trajectory=5, trajectories_per_phase=1)
    labels = {"crystal0": "Crystal", "melt0": "melt"}
    rows = []
    for name, lab in labels.items():
        fs = [f for f in frames if f.trajectory == name]
        write_lammps_dump(tmp_path / f"{name}.dump", fs)
        write_lammps_data(tmp_path / f"{name}.data", fs[0])
        rows.append(f'  {{ path = "{name}.dump", data_file = "{name}.data", label = "{lab}" }},')
    text = tiny_config(2, 1, "run")
    text = re.sub(r"synthetic = .*\n", "trajectories = [\n" + "\n".join(rows) + "\n]\n", text)
    cfg = tmp_path / "dumps.toml"
    cfg.write_text(text)
    assert main(["train", str(cfg)]) == 0, capsys.readouterr().err
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert set(ck["centroids"]) == {"crystal", "melt"}  # both phases were recognised
    # integer labels work the same; a misspelt one names the allowed values before any reading
    cfg.write_text(text.replace('label = "Crystal"', "label = 1").replace('label = "melt"', "label = 0"))
    assert main(["train", str(cfg), "--no-resume"]) == 0, capsys.readouterr().err
    cfg.write_text(text.replace('label = "melt"', 'label = "liquid"'))
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "trajectories[1]" in err and '"crystal", "melt", "unlabeled"' in err


# ---------------------------------------------------------------------------- docs/config.md
def test_docs_config_lists_every_key_with_its_default():
    """docs/config.md has a row for every field of DataConfig/ModelConfig/TrainingConfig in its
    section, with the current default (read back as TOML), and its generated part is current."""
    import dataclasses
    import tomllib
    from pathlib import Path

    from latentcv.cv_models import config as C
    from latentcv.cv_models import config_reference as R

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "config.md").read_text()
    for section, cls in (("data", C.DataConfig), ("model", C.ModelConfig), ("training", C.TrainingConfig)):
        table = doc.split(f"### `[{section}]`", 1)[1].split("###", 1)[0]
        rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| [^|]+ \| `([^`]*)` \|", table, re.M)}
        for f in dataclasses.fields(cls):
            assert f.name in rows, f"docs/config.md [{section}] lacks {f.name}"
            assert tomllib.loads(f"v = {rows[f.name]}")["v"] == R.field_default(f), (section, f.name)
        assert set(rows) == {f.name for f in dataclasses.fields(cls)}
    generated = doc[doc.index(R.REFERENCE_BEGIN) : doc.index(R.REFERENCE_END) + len(R.REFERENCE_END)] + "\n"
    assert generated == R.config_reference_markdown(), (
        "run: python -m latentcv.cv_models.config_reference --markdown docs/config.md"
    )
    assert "docs/config.md" in (root / "README.md").read_text()
    assert "config.md" in (root / "docs" / "model.md").read_text()


def test_field_docs_refuses_an_undocumented_field():
    from dataclasses import dataclass

    from latentcv.cv_models.config_reference import field_docs

    @dataclass
    class Partly:
        """A test config.

        Attributes:
            a: documented,
                over two lines.
        """

        a: int = 1
        b: int = 2

    with pytest.raises(ConfigError, match=r"document \['b'\]"):
        field_docs(Partly)


@pytest.mark.parametrize("batch_size", [4, 3])  # 3: odd shares; the last batch of 1 leaves a process empty
def test_two_processes_train_the_one_process_model(tmp_path, batch_size):
    """[training] processes = 2 (data-parallel, gloo) gives the model of one process with the
    same global batches: every parameter to 1e-9 after 3 epochs, negatives included."""
    from export_helpers import tiny_config

    from latentcv.cv_models.checkpoint import load_checkpoint

    from latentcv.cv_models.training import train

    states = {}
    for processes in (1, 2):
        d = tmp_path / f"p{processes}"
        d.mkdir()
        text = tiny_config(2, epochs=3).replace("batch_size = 4", f"batch_size = {batch_size}")
        (d / "config.toml").write_text(text + f"processes = {processes}\nthreads = 1\n")
        states[processes] = load_checkpoint(train(load_config(d / "config.toml")))
    one, two = states[1]["model_state"], states[2]["model_state"]
    assert one.keys() == two.keys()
    worst = max(float((one[k].double() - two[k].double()).abs().max()) for k in one if one[k].is_floating_point())
    assert worst < 1e-9, worst
    h1, h2 = states[1]["train_state"]["history"], states[2]["train_state"]["history"]
    assert [round(r["train_total"], 9) for r in h1] == [round(r["train_total"], 9) for r in h2]
