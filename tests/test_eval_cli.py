"""``latentcv export`` / ``plumed-input`` / ``eval`` from the command line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.app import cli
from latentcv.cv_models.native import core as native
from latentcv.cv_models.data.writers import write_lammps_dump
from latentcv.cv_models.systems import METAD_DEFAULTS
from latentcv.cv_models.app.evaluate import length_conversion, molecule_outputs
from export_helpers import held_out_frames

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dimer(tmp_path_factory, tiny_models):
    """A tiny trained dimer model exported through the CLI, and a dump of held-out frames."""
    root = tmp_path_factory.mktemp("cli")
    ck = tiny_models.checkpoint(2)
    model = root / "model.pt"
    assert cli.main(["export", str(ck), "-o", str(model)]) == 0
    frames = held_out_frames(ck)
    frames = [dataclasses.replace(f, timestep=100 * k) for k, f in enumerate(frames)]
    dump = root / "traj.dump"
    write_lammps_dump(dump, frames)
    return {"checkpoint": ck, "model": model, "frames": frames, "dump": dump, "root": root}


def test_export_cli_errors(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "latentcv train" in err
    assert not (tmp_path / "m.pt").exists()


def test_eval_writes_colvar_equal_to_core_and_a_plot(dimer, tmp_path, capsys):
    colvar, png = tmp_path / "colvar.dat", tmp_path / "colvar.png"
    rc = cli.main(
        ["eval", str(dimer["model"]), str(dimer["dump"]), "-o", str(colvar), "--plot", str(png), "--no-progress"]
    )
    assert rc == 0, capsys.readouterr().err
    fields, data = read_plumed_table(colvar)
    assert fields == ["frame", "step", "z0", "z1", "proj", "dcrys", "n_crystal", "n_nucleus"]
    assert len(data) == len(dimer["frames"])
    np.testing.assert_array_equal(data[:, 1], [f.timestep for f in dimer["frames"]])
    core = native.Model(str(dimer["model"]), warmup=False)
    for row, f in zip(data, dimer["frames"]):
        v = core.evaluate(f.positions, f.cell, gradients=False)[0]
        np.testing.assert_allclose(row[2:], v, rtol=1e-10, atol=1e-10)  # dump: wrapped, %.16g
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_eval_molecule_dump_sums_to_the_counts_and_reads_back(dimer, tmp_path, capsys):
    """--molecule-dump: one row per molecule, c_p summing to n_crystal and c_nucleus to
    n_nucleus of the same frame; a LAMMPS dump latentcv's own reader (and OVITO) reads."""
    from latentcv.cv_models.data.lammps_reader import iter_lammps_dump

    colvar, dump = tmp_path / "colvar.dat", tmp_path / "molecules.dump"
    rc = cli.main(
        [
            "eval",
            str(dimer["model"]),
            str(dimer["dump"]),
            "-o",
            str(colvar),
            "--molecule-dump",
            str(dump),
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    fields, data = read_plumed_table(colvar)
    frames = list(iter_lammps_dump(dump))
    assert len(frames) == len(dimer["frames"])
    for row, written, f in zip(data, frames, dimer["frames"]):
        assert len(written.columns["id"]) == f.n_atoms // 2  # one row per molecule
        assert written.timestep == f.timestep
        np.testing.assert_allclose(written.columns["c_p"].sum(), row[fields.index("n_crystal")], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            written.columns["c_nucleus"].sum(), row[fields.index("n_nucleus")], rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(written.cell, f.cell, atol=1e-12)


def test_eval_errors_name_the_fix(dimer, tmp_path, capsys):
    # a dimer model on a trajectory with an odd atom count
    f = dimer["frames"][0]
    odd = dataclasses.replace(f, positions=f.positions[:-1], molecule=np.arange(f.n_atoms - 1), species=f.species[:-1])
    write_lammps_dump(tmp_path / "odd.dump", [odd])
    assert (
        cli.main(
            ["eval", str(dimer["model"]), str(tmp_path / "odd.dump"), "--no-progress", "-o", str(tmp_path / "c.dat")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "2 atoms" in err and "--atoms-per-molecule" in err
    # reduced (lj) model, dump declared in `units real`
    assert (
        cli.main(
            [
                "eval",
                str(dimer["model"]),
                str(dimer["dump"]),
                "--units",
                "real",
                "--no-progress",
                "-o",
                str(tmp_path / "c.dat"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "reduced (lj) and physical units do not convert" in err
    assert cli.main(["eval", str(tmp_path / "missing.pt"), str(dimer["dump"])]) == 2
    assert "latentcv export" in capsys.readouterr().err
    assert not (tmp_path / "c.dat").exists()


def test_length_conversion():
    assert length_conversion("A", "nm") == pytest.approx(0.1)
    assert length_conversion("nm", "A") == pytest.approx(10.0)
    assert length_conversion("lj", "lj") == 1.0
    with pytest.raises(ValueError, match="do not convert"):
        length_conversion("lj", "nm")


def test_plumed_input_cli(dimer, tmp_path, capsys):
    out = tmp_path / "plumed.dat"
    n = dimer["frames"][0].n_atoms
    assert (
        cli.main(
            [
                "plumed-input",
                str(dimer["model"]),
                "--natoms",
                str(n),
                "--temp",
                "1.15",
                "--cv",
                "proj",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert (
        f"ATOMS=1-{n}" in text
        and "ARG=cv.proj" in text
        and f"PACE={METAD_DEFAULTS.pace}" in text
        and f"HEIGHT={METAD_DEFAULTS.height_kt * 1.15:.6g}" in text
    )
    # multiple time stepping by default: METAD's STRIDE, explained in the file
    metad = next(line for line in text.splitlines() if line.startswith("metad:"))
    assert metad.endswith(f" STRIDE={METAD_DEFAULTS.bias_stride}") and "multiple time stepping" in text
    assert "UNITS NATURAL" not in text.replace("# for `plumed driver` add the line: UNITS NATURAL", "")
    assert (
        cli.main(
            [
                "plumed-input",
                str(dimer["model"]),
                "--natoms",
                str(n),
                "--temp",
                "1.15",
                "--cv",
                "n_crystal",
                "--height",
                "2.5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "ARG=cv.n_crystal" in out.read_text() and "HEIGHT=2.5" in out.read_text()
    cases = {
        ("--natoms", str(n)): "--temp",
        ("--temp", "1.0"): "--natoms",
        ("--natoms", str(n - 1), "--temp", "1.0"): "whole molecules of 2 atoms",
        ("--natoms", str(n), "--temp", "1.0", "--cv", "q6"): "z0, z1, proj, dcrys, n_crystal",
    }
    for args, message in cases.items():
        assert cli.main(["plumed-input", str(dimer["model"]), *args]) == 2
        assert message in capsys.readouterr().err, args


def test_plumed_input_flags_a_degenerate_sigma_hint(tmp_path, capsys):
    """A sigma_hint below 1/50 of the CV's melt->crystal distance gets a `# REVIEW SIGMA` line
    and a warning on stderr; a fine hint, or an explicit --sigma, gets neither."""
    from export_helpers import save_model_with_hints

    # centroids: crystal (1, 0.5), melt (0, 0); distances z0 1, z1 0.5, proj 1, dcrys 0.99; n_crystal needs
    # at least half a molecule (an extensive count: a fixed fraction of M would flag every large box)
    # (the default SIGMA is 2 x METAD_DEFAULTS.sigma_melt_stds = 8 x the hint)
    bad = save_model_with_hints(tmp_path / "bad.pt", sigma_hint=[0.05, 0.001, 2e-4, 0.05, 0.05, 0.5])
    good = save_model_with_hints(tmp_path / "good.pt", sigma_hint=[0.05, 0.02, 0.03, 0.05, 1.0, 1.0])
    base = ["--natoms", "32", "--temp", "0.6"]
    for cv, model, flagged in (
        ("proj", bad, True),
        ("z1", bad, True),
        ("z0", bad, False),
        ("proj", good, False),
        ("z1", good, False),
        ("n_crystal", good, False),
        ("n_crystal", bad, True),
    ):
        out = tmp_path / f"{cv}.dat"
        assert cli.main(["plumed-input", str(model), "--cv", cv, "--out", str(out)] + base) == 0
        text, err = out.read_text(), capsys.readouterr().err
        assert ("# REVIEW SIGMA:" in text) == flagged, (cv, model)
        assert ("warning" in err and "REVIEW SIGMA" in err) == flagged, (cv, model, err)
    assert cli.main(["plumed-input", str(bad), "--cv", "proj", "--out", str(tmp_path / "p.dat")] + base) == 0
    text = (tmp_path / "p.dat").read_text()
    review = [line for line in text.splitlines() if line.startswith("# REVIEW SIGMA:")]
    assert len(review) == 1 and "SIGMA 0.0016 of cv.proj is 1/625 of its melt->crystal distance 1 " in review[0]
    assert "--sigma, at least 0.02" in text and "interface" in text and "SIGMA=0.0016 " in text
    assert "--sigma" in capsys.readouterr().err
    # the user's own --sigma is not second-guessed
    assert (
        cli.main(["plumed-input", str(bad), "--cv", "proj", "--sigma", "0.05", "--out", str(tmp_path / "s.dat")] + base)
        == 0
    )
    assert "REVIEW SIGMA" not in (tmp_path / "s.dat").read_text() and "warning" not in capsys.readouterr().err


def test_one_set_of_metad_defaults_across_the_commands():
    """plumed-input, demo and compare start from the same METAD settings (METAD_DEFAULTS)."""
    from latentcv.cv_models.app.compare import CompareConfig
    from latentcv.cv_models.app.demo import DemoConfig
    from latentcv.export.plumed_input import PlumedInputOptions

    parser = cli.build_parser()
    pi = parser.parse_args(["plumed-input", "m.pt"])
    cmp = parser.parse_args(["compare", "m.pt"])
    for pace, biasfactor in [
        (pi.pace, pi.biasfactor),
        (cmp.pace, cmp.biasfactor),
        (PlumedInputOptions(atoms="1").pace, PlumedInputOptions(atoms="1").biasfactor),
        (CompareConfig().pace, CompareConfig().biasfactor),
        (DemoConfig().pace, DemoConfig().biasfactor),
    ]:
        assert (pace, biasfactor) == (METAD_DEFAULTS.pace, METAD_DEFAULTS.biasfactor)
    assert cmp.height == CompareConfig().height_kt == METAD_DEFAULTS.height_kt
    # one default bias STRIDE (multiple time stepping) for every command; compare's is the
    # system's (the same for LJ, 1 for mW's 10 fs steps)
    lj = CompareConfig(cvs=("energy",)).validate().stride
    mw = CompareConfig(system="mw", cvs=("energy",)).validate().stride
    strides = {pi.bias_stride, PlumedInputOptions(atoms="1").bias_stride, lj}
    assert strides == {METAD_DEFAULTS.bias_stride} and METAD_DEFAULTS.bias_stride > 1
    assert cmp.bias_stride == CompareConfig().stride == 0 and mw == 1
    # the judge's threshold too: stacking-disordered ice frozen from the melt reads less
    thresholds = [CompareConfig(system=s, cvs=("energy",)).validate().crystal_threshold for s in ("lj", "mw")]
    assert (
        thresholds == [0.8, 0.7]
        and CompareConfig(cvs=("energy",), crystal_threshold=0.9).validate().crystal_threshold == 0.9
    )
    assert METAD_DEFAULTS.pace % METAD_DEFAULTS.bias_stride == 0
    # --stride: the PRINT stride of plumed-input, the bias stride of compare; the new names say which
    assert parser.parse_args(["plumed-input", "m.pt", "--print-stride", "7"]).stride == 7
    assert parser.parse_args(["plumed-input", "m.pt", "--bias-stride", "2"]).bias_stride == 2
    assert parser.parse_args(["compare", "m.pt", "--bias-stride", "5"]).bias_stride == 5
    assert parser.parse_args(["compare", "m.pt", "--stride", "3"]).bias_stride == 3
    assert parser.parse_args(["compare", "m.pt"]).sigma_scale == CompareConfig().sigma_scale
    assert parser.parse_args(["compare", "m.pt", "--sigma-scale", "1.5"]).sigma_scale == 1.5


def test_export_nucleus_option_sets_and_records_n_nucleus(dimer, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert cli.main(["export", str(dimer["checkpoint"]), "-o", str(out), "--nucleus", "0.35,0.1"]) == 0
    meta = dict(native.Model(str(out), warmup=False).metadata)
    assert (meta["nucleus_fraction"], meta["nucleus_width"]) == ("0.35", "0.1")
    capsys.readouterr()
    for bad in ("1.5,0.1", "0.5", "a,b"):
        assert cli.main(["export", str(dimer["checkpoint"]), "-o", str(tmp_path / "bad.pt"), "--nucleus", bad]) == 2
        assert "nucleus" in capsys.readouterr().err.lower()
    assert not (tmp_path / "bad.pt").exists()


def test_export_crystal_softness_divides_every_molecule_logit(dimer, tmp_path, capsys):
    """--crystal-softness T: each molecule's p becomes sigmoid(logit / T) of the trained
    head's logit (from the as-trained model's p), and the metadata records T."""
    out = tmp_path / "soft.pt"
    assert cli.main(["export", str(dimer["checkpoint"]), "-o", str(out), "--crystal-softness", "2.5"]) == 0
    assert dict(native.Model(str(out), warmup=False).metadata)["crystal_softness"] == "2.5"
    for frame in dimer["frames"][:2]:
        p_sharp, p_soft = (molecule_outputs(m, [frame])[0][0][:, 0] for m in (dimer["model"], out))
        logit = np.log(p_sharp) - np.log1p(-p_sharp)
        np.testing.assert_allclose(p_soft, 1.0 / (1.0 + np.exp(-logit / 2.5)), rtol=1e-9, atol=1e-12)
        assert np.abs(p_soft - p_sharp).max() > 1e-3  # it changed something
    capsys.readouterr()
    assert (
        cli.main(["export", str(dimer["checkpoint"]), "-o", str(tmp_path / "bad.pt"), "--crystal-softness", "0.5"]) == 2
    )
    assert "crystal-softness" in capsys.readouterr().err
